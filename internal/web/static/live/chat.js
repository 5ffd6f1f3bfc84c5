// @ts-check
// The chat panel: the log (to everyone, private between a student and
// the hosts, and a host's message to every breakout room), and the form
// with the choice of whom to send to.

import { byId, h } from "./dom.js";
import { nameOf, groupName } from "./state.js";

/**
 * @typedef {import("./state.js").App} App
 * @typedef {import("./state.js").ChatMessage} ChatMessage
 */

/** @param {App} app */
export function chat(app) {
  const { S, host } = app;
  const log = byId("chat-log");
  const text = /** @type {HTMLInputElement} */ (byId("chat-text"));
  const to = /** @type {HTMLSelectElement} */ (byId("chat-to"));

  byId("chat-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = text.value.trim();
    if (!t) return;
    const ok = await app.ask({ type: "chat", to: to.value, text: t }, byId("chat-error"));
    if (ok) text.value = "";
  });

  /**
   * @param {ChatMessage} c
   * @param {string} [label] says whom it went to instead of c.to
   */
  function add(c, label) {
    const mine = c.from === S.you?.id;
    let whom = "";
    if (label) whom = label;
    else if (c.to === "hosts") whom = "to the hosts, privately";
    else if (c.to !== "everyone") whom = c.to === S.you?.id ? "to you, privately" : `to ${nameOf(S, c.to)}, privately`;
    const when = new Date(c.sentAt);
    log.append(h("li", { class: `chat-msg${c.to !== "everyone" ? " private" : ""}${mine ? " mine" : ""}` }, [
      h("span", { class: "from", text: mine ? "You" : c.fromName || nameOf(S, c.from) }),
      whom ? h("span", { class: "to", text: ` (${whom})` }) : null,
      h("time", { datetime: c.sentAt, text: ` ${when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` }),
      h("p", { class: "text", text: c.text }),
    ]));
    log.scrollTop = log.scrollHeight;
  }

  /** Offers whom this page may write to: hosts anyone, students the hosts. */
  function renderTargets() {
    const chosen = to.value;
    const opts = [h("option", { value: "everyone", text: S.you?.group ? `Everyone in ${groupName(S.you.group)}` : "Everyone" })];
    if (host) {
      for (const p of S.people.values()) {
        if (p.id !== S.you?.id) opts.push(h("option", { value: p.id, text: `${p.name}, privately` }));
      }
    } else {
      opts.push(h("option", { value: "hosts", text: "Hosts only (private)" }));
    }
    const sig = opts.map((o) => o.value + o.textContent).join("|");
    if (to.dataset.sig === sig) return;
    to.dataset.sig = sig;
    to.replaceChildren(...opts);
    to.value = opts.some((o) => o.value === chosen) ? chosen : "everyone";
  }

  return {
    add,
    renderTargets,
    /** Empties the log: the joined message carries the chat so far. */
    clear() {
      log.replaceChildren();
    },
  };
}
