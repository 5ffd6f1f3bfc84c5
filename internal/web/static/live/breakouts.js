// @ts-check
// Breakout rooms: the banner that says where this page is, the timer
// everyone sees count down (by the server's clock), and for hosts the
// panel that creates the rooms, assigns people by hand or automatically,
// sets the timer, broadcasts to every room, visits one, and closes them.

import { byId, say, skew, clock, h, changed } from "./dom.js";
import { groupName } from "./state.js";

/**
 * @typedef {import("./state.js").App} App
 * @typedef {import("./state.js").Msg} Msg
 */

/** @param {App} app */
export function breakouts(app) {
  const { S, host } = app;

  if (host) {
    const bErr = byId("breakouts-error");
    /**
     * @param {string} id
     * @param {() => Msg} msg
     */
    const form = (id, msg) => byId(id).addEventListener("submit", (ev) => {
      ev.preventDefault();
      app.ask(msg(), bErr);
    });
    const num = (/** @type {string} */ id) => Number(/** @type {HTMLInputElement} */ (byId(id)).value);
    const val = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (byId(id)).value;
    form("breakouts-create", () => ({ type: "breakouts.create", count: num("breakout-count") }));
    form("breakouts-auto", () => ({ type: "breakouts.auto", mode: val("breakout-mode") }));
    form("breakouts-timer", () => ({ type: "breakouts.timer", seconds: Math.round(num("breakout-minutes") * 60) }));
    form("breakouts-broadcast", () => ({ type: "breakouts.broadcast", text: val("breakout-message") }));
    form("breakouts-visit", () => ({ type: "breakouts.visit", group: val("breakout-visit") }));
    byId("btn-breakouts-close").addEventListener("click", () => { app.ask({ type: "breakouts.close" }, bErr); });
    byId("assign-list").addEventListener("change", (ev) => {
      const sel = ev.target;
      if (sel instanceof HTMLSelectElement && sel.dataset.participant) {
        app.ask({ type: "breakouts.assign", assignments: { [sel.dataset.participant]: sel.value } }, bErr);
      }
    });
  }

  /** Shows the time left until the rooms close, or hides the timer. */
  function tick() {
    const el = byId("breakout-timer");
    const ends = S.breakouts.timerEndsAt ? Date.parse(S.breakouts.timerEndsAt) : NaN;
    if (Number.isNaN(ends) || S.breakouts.groups.length === 0) {
      say(el, "");
      return;
    }
    say(el, `Breakout rooms close in ${clock(ends - (Date.now() + skew))}`);
  }

  function render() {
    const b = S.breakouts;
    say(byId("breakout-banner"), b.you ? `You are in ${groupName(b.you)}.` : "");
    tick();
    if (!host) return;
    const open = b.groups.length > 0;
    byId("breakouts-create").hidden = open;
    byId("breakouts-open").hidden = !open;
    if (!open || byId("breakouts-panel").hidden) return;
    // An open drop-down must not be replaced while someone chooses.
    if (!changed(byId("assign-list"), [b.groups, [...S.people.values()].map((p) => [p.id, p.name, p.group, p.role])])) return;
    const rooms = [["", "Main room"], ...b.groups.map((g) => [g.id, `Room ${g.id.replace(/^b/, "")}`])];
    /** @param {string} current */
    const options = (current) => rooms.map(([v, t]) => h("option", { value: v, text: t, selected: v === current }));
    byId("assign-list").replaceChildren(...[...S.people.values()].filter((p) => p.role !== "HOST").map((p) => {
      const id = `assign-${p.id}`;
      return h("li", { class: "field" }, [
        h("label", { for: id, text: `Breakout room for ${p.name}` }),
        h("select", { id, "data-participant": p.id }, options(p.group)),
      ]);
    }));
    const visit = /** @type {HTMLSelectElement} */ (byId("breakout-visit"));
    const chosen = visit.value;
    visit.replaceChildren(...options(chosen));
  }

  return { render, tick };
}
