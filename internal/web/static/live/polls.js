// @ts-check
// Polls: a host asks a question with 2 to 10 options and sees the
// results live; a student votes once and sees the results when the poll
// closes.

import { byId, h, say, changed } from "./dom.js";

/** @typedef {import("./state.js").App} App */

/** @param {App} app */
export function polls(app) {
  const { S, host } = app;
  const list = byId("poll-list");

  if (host) {
    byId("poll-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const q = /** @type {HTMLInputElement} */ (byId("poll-question"));
      const o = /** @type {HTMLTextAreaElement} */ (byId("poll-options"));
      const options = o.value.split("\n").map((s) => s.trim()).filter(Boolean);
      const err = byId("poll-error");
      if (options.length < 2 || options.length > 10) {
        say(err, "Give 2 to 10 options, one per line.");
        return;
      }
      const ok = await app.ask({ type: "poll.create", question: q.value, options, multiple: /** @type {HTMLInputElement} */ (byId("poll-multiple")).checked }, err);
      if (ok) {
        q.value = "";
        o.value = "";
      }
    });
  }
  // Votes and closes are forms and buttons made by render.
  list.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    if (!(f instanceof HTMLFormElement)) return;
    const choices = [...f.querySelectorAll("input:checked")].map((i) => Number(/** @type {HTMLInputElement} */ (i).value));
    if (choices.length === 0) return;
    app.ask({ type: "poll.vote", poll: f.dataset.poll ?? "", choices });
  });
  list.addEventListener("click", (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-close-poll]") : null;
    if (b instanceof HTMLElement) app.ask({ type: "poll.close", poll: b.dataset.closePoll ?? "" });
  });

  function render() {
    byId("polls-empty").hidden = S.polls.size > 0;
    // A half-made choice must survive unrelated events.
    if (!changed(list, [[...S.polls.values()], [...S.results.values()]])) return;
    list.replaceChildren(...[...S.polls.values()].reverse().map((p) => {
      const r = S.results.get(p.id);
      /** @type {(Node | null)[]} */
      const body = [h("p", { class: "question", text: p.question }),
        h("p", { class: "hint", text: `${p.multiple ? "Choose any" : "Choose one"}${p.closed ? " · closed" : " · open"}` })];
      if (!p.closed && !host && !p.yourVote) {
        const f = h("form", { class: "vote", "data-poll": p.id }, [
          h("fieldset", {}, [h("legend", { class: "sr-only", text: p.question }),
            ...p.options.map((o, i) => {
              const id = `poll-${p.id}-${i}`;
              return h("div", { class: "field check" }, [
                h("input", { type: p.multiple ? "checkbox" : "radio", name: `poll-${p.id}`, id, value: String(i) }),
                h("label", { for: id, text: o }),
              ]);
            })]),
          h("button", { type: "submit", text: "Vote" }),
        ]);
        body.push(f);
      } else if (p.yourVote) {
        body.push(h("p", { text: `You voted: ${p.yourVote.map((i) => p.options[i]).join(", ")}` }));
      }
      if (r) {
        body.push(h("ul", { class: "results", "aria-label": `Results of ${p.question}` }, p.options.map((o, i) =>
          h("li", {}, [h("span", { text: o }), h("meter", { min: "0", max: String(Math.max(1, r.voters)), value: String(r.counts[i] ?? 0), "aria-label": o }),
            h("span", { text: ` ${r.counts[i] ?? 0} of ${r.voters}` })]))));
      }
      if (host && !p.closed) body.push(h("button", { type: "button", class: "secondary", "data-close-poll": p.id, text: `Close poll: ${p.question}` }));
      return h("li", { class: "poll" }, body);
    }));
  }

  return { render };
}
