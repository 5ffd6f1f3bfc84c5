// @ts-check
// The parts the presenter and viewer pages share: chat (with moderation
// for hosts), polls (voting, and for hosts creating and closing), and the
// aggregated reactions. What people typed is always set as text, never
// parsed as HTML.

import { byId, h, reason, say } from "../live/dom.js";

/**
 * @typedef {import("./audience.js").Audience} Audience
 * @typedef {import("./audience.js").Msg} Msg
 * @typedef {{id: string, from: string, fromName: string, text: string, sentAt: string, role?: string}} ChatMessage
 * @typedef {{id: string, question: string, options: string[], multiple: boolean, closed: boolean, yourVote?: number[] | null}} Poll
 * @typedef {{poll: string, counts: number[], voters: number}} Results
 */

/**
 * Sends a request, showing a refusal in errEl.
 * @param {Audience} audience
 * @param {Msg} m
 * @param {HTMLElement} [errEl]
 * @returns {Promise<Msg | null>}
 */
export async function ask(audience, m, errEl) {
  try {
    const ok = await audience.request(m);
    if (errEl) say(errEl, "");
    return ok;
  } catch (e) {
    if (errEl) say(errEl, reason(e));
    return null;
  }
}

/** The chat panel. */
export class Chat {
  /**
   * @param {Audience} audience
   * @param {object} o
   * @param {boolean} o.host whether to offer moderation
   * @param {() => string} o.you the reader's user ID
   */
  constructor(audience, o) {
    this.audience = audience;
    this.o = o;
    this.log = byId("chat-log");
    /** @type {Set<string>} viewers a host muted, whose messages offer Unmute */
    this.muted = new Set();
    const text = /** @type {HTMLInputElement} */ (byId("chat-text"));
    const err = byId("chat-error");
    byId("chat-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const t = text.value.trim();
      if (!t) return;
      if (await ask(this.audience, { type: "chat", text: t }, err)) text.value = "";
    });
    if (o.host) {
      this.log.addEventListener("click", (ev) => {
        const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-act]") : null;
        if (!(b instanceof HTMLElement)) return;
        const { act = "", msg = "", user = "" } = b.dataset;
        if (act === "delete") ask(this.audience, { type: "chat.delete", message: msg }, err);
        if (act === "mute") ask(this.audience, { type: "mute", user, muted: true }, err);
        if (act === "unmute") ask(this.audience, { type: "mute", user, muted: false }, err);
        if (act === "ban") ask(this.audience, { type: "ban", user }, err);
      });
    }
  }

  /** @param {ChatMessage[]} list the history sent on welcome */
  reset(list) {
    this.log.replaceChildren();
    for (const m of list) this.add(m);
  }

  /** @param {ChatMessage} m */
  add(m) {
    if (m.id && this.log.querySelector(`li[data-id="${CSS.escape(m.id)}"]`)) return;
    const mine = m.from === this.o.you();
    const at = new Date(m.sentAt);
    /** @type {(Node | string)[]} */
    const kids = [
      h("span", { class: "who", text: mine ? "You" : m.fromName }),
      h("time", { datetime: m.sentAt, text: Number.isNaN(at.getTime()) ? "" : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) }),
      h("p", { class: "text", text: m.text }),
    ];
    if (this.o.host && !mine) {
      kids.push(h("span", { class: "moderate" }, [
        h("button", { type: "button", class: "link", "data-act": "delete", "data-msg": m.id, "aria-label": `Delete message from ${m.fromName}: ${m.text.slice(0, 40)}`, text: "Delete" }),
        this.muted.has(m.from)
          ? h("button", { type: "button", class: "link", "data-act": "unmute", "data-user": m.from, "aria-label": `Unmute ${m.fromName}`, text: "Unmute" })
          : h("button", { type: "button", class: "link", "data-act": "mute", "data-user": m.from, "aria-label": `Mute ${m.fromName}`, text: "Mute" }),
        h("button", { type: "button", class: "link", "data-act": "ban", "data-user": m.from, "aria-label": `Ban ${m.fromName}`, text: "Ban" }),
      ]));
    }
    this.log.append(h("li", { class: `chat-msg${mine ? " mine" : ""}`, "data-id": m.id }, kids));
    this.log.scrollTop = this.log.scrollHeight;
  }

  /**
   * Shows a viewer as muted or not: their messages offer Unmute or Mute.
   * @param {string} user
   * @param {boolean} muted
   */
  setMuted(user, muted) {
    for (const b of this.log.querySelectorAll(`button[data-user="${CSS.escape(user)}"][data-act="${muted ? "mute" : "unmute"}"]`)) {
      const el = /** @type {HTMLElement} */ (b);
      const name = (el.getAttribute("aria-label") ?? "").replace(/^(Mute|Unmute) /, "");
      el.dataset.act = muted ? "unmute" : "mute";
      el.textContent = muted ? "Unmute" : "Mute";
      el.setAttribute("aria-label", `${muted ? "Unmute" : "Mute"} ${name}`);
    }
    if (muted) this.muted.add(user);
    else this.muted.delete(user);
  }

  /** @param {string} id a message a host deleted */
  remove(id) {
    this.log.querySelector(`li[data-id="${CSS.escape(id)}"]`)?.remove();
  }
}

/** The polls panel. */
export class Polls {
  /**
   * @param {Audience} audience
   * @param {object} o
   * @param {boolean} o.host whether to offer creating and closing polls
   */
  constructor(audience, o) {
    this.audience = audience;
    this.o = o;
    /** @type {Map<string, Poll>} */
    this.polls = new Map();
    /** @type {Map<string, Results>} */
    this.results = new Map();
    this.list = byId("poll-list");
    this.list.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = /** @type {HTMLFormElement} */ (ev.target);
      const choices = [...f.querySelectorAll("input:checked")].map((i) => Number(/** @type {HTMLInputElement} */ (i).value));
      const err = /** @type {HTMLElement} */ (f.querySelector(".field-error"));
      if (choices.length === 0) {
        say(err, "Choose an option first.");
        return;
      }
      const poll = f.dataset.poll ?? "";
      ask(this.audience, { type: "poll.vote", poll, choices }, err).then((ok) => {
        const p = this.polls.get(poll);
        if (ok && p) {
          p.yourVote = choices;
          this.render();
        }
      });
    });
    this.list.addEventListener("click", (ev) => {
      const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-close-poll]") : null;
      if (b instanceof HTMLElement) ask(this.audience, { type: "poll.close", poll: b.dataset.closePoll ?? "" });
    });
    if (o.host) {
      const form = byId("poll-form");
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const q = /** @type {HTMLInputElement} */ (byId("poll-question"));
        const opts = /** @type {HTMLTextAreaElement} */ (byId("poll-options"));
        const multiple = /** @type {HTMLInputElement} */ (byId("poll-multiple"));
        const err = byId("poll-error");
        const options = opts.value.split("\n").map((s) => s.trim()).filter(Boolean);
        if (!q.value.trim()) return say(err, "Write a question.");
        if (options.length < 2 || options.length > 10) return say(err, "Give 2 to 10 options, one per line.");
        const ok = await ask(this.audience, { type: "poll.create", question: q.value.trim(), options, multiple: multiple.checked }, err);
        // The poll itself arrives as a "poll" message, as to everyone.
        if (ok) {
          q.value = opts.value = "";
          multiple.checked = false;
        }
      });
    }
  }

  /**
   * @param {Poll[]} polls
   * @param {Results[]} results
   */
  reset(polls, results) {
    this.polls = new Map(polls.map((p) => [p.id, p]));
    this.results = new Map(results.map((r) => [r.poll, r]));
    this.render();
  }

  /** @param {Poll} p */
  set(p) {
    const before = this.polls.get(p.id);
    // A poll pushed to everyone does not know this reader's vote.
    if (before && (p.yourVote === undefined || p.yourVote === null)) p.yourVote = before.yourVote;
    this.polls.set(p.id, p);
    this.render();
  }

  /** @param {Results} r */
  setResults(r) {
    this.results.set(r.poll, r);
    this.render();
  }

  render() {
    byId("polls-empty").hidden = this.polls.size > 0;
    this.list.replaceChildren(...[...this.polls.values()].reverse().map((p) => this.item(p)));
  }

  /** @param {Poll} p */
  item(p) {
    /** @type {(Node | string)[]} */
    const body = [h("h3", { text: p.question }), h("p", { class: "hint", text: p.closed ? "Closed" : (p.multiple ? "Open: choose one or more" : "Open: choose one") })];
    const voted = Array.isArray(p.yourVote) && p.yourVote.length > 0;
    if (voted) {
      body.push(h("p", { class: "voted", text: `You voted: ${(p.yourVote ?? []).map((i) => p.options[i]).join(", ")}` }));
    } else if (!p.closed) {
      body.push(h("form", { class: "vote", "data-poll": p.id }, [
        h("fieldset", {}, [
          h("legend", { class: "sr-only", text: p.question }),
          ...p.options.map((o, i) => {
            const id = `poll-${p.id}-${i}`;
            return h("div", { class: "field check" }, [
              h("input", { type: p.multiple ? "checkbox" : "radio", name: `poll-${p.id}`, id, value: String(i) }),
              h("label", { for: id, text: o }),
            ]);
          }),
        ]),
        h("button", { type: "submit", "aria-label": `Vote: ${p.question}`, text: "Vote" }),
        h("p", { class: "field-error", role: "alert", hidden: true }),
      ]));
    }
    const r = this.results.get(p.id);
    if (r && (this.o.host || p.closed)) {
      const total = Math.max(1, r.counts.reduce((a, b) => a + b, 0));
      body.push(h("div", { class: "results" }, [
        h("p", { text: `${r.voters} ${r.voters === 1 ? "person" : "people"} voted` }),
        h("ul", {}, p.options.map((o, i) => {
          const n = r.counts[i] ?? 0;
          return h("li", {}, [
            h("span", { text: `${o}: ${n}` }),
            h("meter", { min: "0", max: String(total), value: String(n), "aria-label": `${o}: ${n} of ${total} votes` }),
          ]);
        })),
      ]));
    }
    if (this.o.host && !p.closed) body.push(h("button", { type: "button", class: "secondary", "data-close-poll": p.id, text: `Close poll: ${p.question}` }));
    return h("li", { class: "poll", "data-poll": p.id }, body);
  }
}

/**
 * The chat, polls and reactions panels of a page, fed from its audience
 * connection. What a welcome and a pushed message mean to them is the
 * same on the presenter and the viewer page; only what the page shows
 * around them (the stream, moderation notices) is its own.
 */
export class Panels {
  /**
   * @param {Audience} audience
   * @param {object} o
   * @param {boolean} o.host whether to offer moderation, and creating and closing polls
   * @param {() => string} o.you the reader's user ID
   */
  constructor(audience, o) {
    this.chat = new Chat(audience, o);
    this.polls = new Polls(audience, { host: o.host });
    this.reactions = new Reactions();
  }

  /**
   * Fills the panels from a welcome (the first one and each after a
   * reconnect): the chat history, the polls and their results.
   * @param {Msg} m
   */
  welcome(m) {
    this.chat.reset(m.chat ?? []);
    this.polls.reset(m.polls ?? [], m.results ?? []);
  }

  /**
   * Shows a pushed message if it is one for the panels.
   * @param {Msg} m
   * @returns {boolean} whether it was
   */
  show(m) {
    switch (m.type) {
      case "chat":
        this.chat.add(/** @type {any} */ (m));
        return true;
      case "chat.deleted":
        this.chat.remove(m.id);
        return true;
      case "poll":
        this.polls.set(m.poll);
        return true;
      case "poll.results":
        this.polls.setResults(m);
        return true;
      case "reactions":
        this.reactions.add(m.counts ?? {});
        return true;
    }
    return false;
  }
}

/** How many floating emoji at most per emoji per push. */
const FLOAT_MAX = 6;

/** Aggregated reactions: running totals and a few floating emoji. */
export class Reactions {
  constructor() {
    /** @type {Map<string, number>} */
    this.totals = new Map();
    this.list = byId("reaction-counts");
    this.float = byId("floating");
  }

  /**
   * Adds one interval's counts (emoji → count) from the server.
   * @param {Record<string, number>} counts
   */
  add(counts) {
    for (const [emoji, n] of Object.entries(counts)) {
      if (!(n > 0)) continue;
      this.totals.set(emoji, (this.totals.get(emoji) ?? 0) + n);
      for (let i = 0; i < Math.min(n, FLOAT_MAX); i++) {
        const el = h("span", { class: "float", text: emoji });
        el.style.left = `${10 + Math.random() * 80}%`;
        el.style.animationDelay = `${i * 120}ms`;
        el.addEventListener("animationend", () => el.remove());
        this.float.append(el);
      }
    }
    this.list.replaceChildren(...[...this.totals].map(([emoji, n]) =>
      h("li", { "data-emoji": emoji, "aria-label": `${emoji}: ${n}` }, [h("span", { "aria-hidden": "true", text: emoji }), ` ${n}`])));
  }
}

/**
 * The WebSocket URL of a path on this server.
 * @param {string} path
 */
export function socketURL(path) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}`;
}
