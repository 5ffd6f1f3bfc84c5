// @ts-check
// The participants panel: everyone with their role, devices, hand and
// connection; for hosts, per-person controls (lower hand, mute, stop
// video, remove), the hand queue in order, and the room controls (mute
// all, lock microphones, lock the room, end the class).

import { byId, maybe, h, changed } from "./dom.js";
import { nameOf, groupName } from "./state.js";

/** @typedef {import("./state.js").App} App */

/** @param {number | undefined} level */
function qualityWord(level) {
  if (level === undefined || level === 3) return "";
  return ["connection lost", "poor connection", "fair connection"][level] ?? "";
}

/** @param {App} app */
export function people(app) {
  const { S, host } = app;

  // Per-person host actions are buttons made by render.
  byId("people-panel").addEventListener("click", (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-action]") : null;
    if (!(b instanceof HTMLElement)) return;
    const p = b.dataset.participant ?? "";
    app.ask({ type: /** @type {string} */ (b.dataset.action), participant: p });
  });
  if (host) {
    byId("btn-mute-all").addEventListener("click", () => { app.ask({ type: "muteAll" }); });
    byId("lock-mics").addEventListener("change", (ev) => app.ask({ type: "lockMics", locked: /** @type {HTMLInputElement} */ (ev.target).checked }));
    byId("lock-room").addEventListener("change", (ev) => app.ask({ type: "lock", locked: /** @type {HTMLInputElement} */ (ev.target).checked }));
    // Ending is for everyone: it takes a second, explicit click.
    byId("btn-end").addEventListener("click", () => {
      byId("btn-end-confirm").hidden = false;
      byId("btn-end-confirm").focus();
    });
    byId("btn-end-confirm").addEventListener("click", () => { app.ask({ type: "end" }); });
    maybe("btn-lower-all")?.addEventListener("click", () => { app.ask({ type: "lowerAllHands" }); });
  }

  function render() {
    if (host) {
      /** @type {HTMLInputElement} */ (byId("lock-mics")).checked = S.micsLocked;
      /** @type {HTMLInputElement} */ (byId("lock-room")).checked = S.locked;
    }
    const list = byId("people-list");
    if (byId("people-panel").hidden) return;
    if (!changed(list, [[...S.people.values()], S.on, S.hands, [...S.qualities]])) return;
    list.replaceChildren(...[...S.people.values()].map((p) => {
      const me = p.id === S.you?.id;
      const media = me ? S.on : p.media;
      const states = [
        media.mic ? "microphone on" : "muted",
        media.camera ? "camera on" : "camera off",
        media.screen ? "sharing screen" : "",
        p.hand ? "hand raised" : "",
        p.group ? groupName(p.group) : "",
        qualityWord(S.qualities.get(p.id)),
      ].filter(Boolean).join(", ");
      /** @type {HTMLElement[]} */
      const actions = [];
      if (host && !me) {
        /** @param {string} action @param {string} text */
        const btn = (action, text) => h("button", { type: "button", class: "secondary small", "data-action": action, "data-participant": p.id, text });
        if (p.hand) actions.push(btn("lowerHand", `Lower hand of ${p.name}`));
        if (p.media.mic) actions.push(btn("mute", `Mute ${p.name}`));
        if (p.media.camera) actions.push(btn("stopVideo", `Stop video of ${p.name}`));
        if (p.role !== "HOST") actions.push(btn("remove", `Remove ${p.name}`));
      }
      return h("li", { class: "person" }, [
        h("span", { class: "name", text: `${p.name}${me ? " (you)" : ""}` }),
        h("span", { class: "badge", text: p.role === "HOST" ? "Host" : "Attendee" }),
        h("span", { class: "state", text: states }),
        actions.length ? h("span", { class: "row-actions" }, actions) : null,
      ]);
    }));
    if (host) {
      const hands = byId("hands-list");
      hands.replaceChildren(...S.hands.map((id) => h("li", {}, [
        h("span", { class: "name", text: nameOf(S, id) }), " ",
        h("button", { type: "button", class: "secondary small", "data-action": "lowerHand", "data-participant": id, text: `Lower hand of ${nameOf(S, id)}` }),
      ])));
      byId("hands-empty").hidden = S.hands.length > 0;
      byId("btn-lower-all").hidden = S.hands.length < 2;
    }
  }

  return { render };
}
