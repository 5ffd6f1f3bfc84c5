// @ts-check
// The control bar and its keyboard shortcuts: the microphone, the
// camera, the screen, the hand, the reactions, the panels (each button
// says whether its panel is open), the shortcut help and Leave.

import { byId, maybe, typing } from "./dom.js";

/** @typedef {import("./state.js").App} App */

/** Each panel's button and the element it shows. */
const PANELS = /** @type {Record<string, [string, string]>} */ ({
  reactions: ["btn-reactions", "reactions"],
  chat: ["btn-chat", "chat-panel"],
  people: ["btn-people", "people-panel"],
  polls: ["btn-polls", "polls-panel"],
  breakouts: ["btn-breakouts", "breakouts-panel"],
});

/**
 * @param {App} app
 * @param {object} o
 * @param {ReturnType<typeof import("./local.js").local>} o.own what this page sends
 * @param {() => unknown} o.leave the person clicked Leave
 */
export function controls(app, o) {
  const { S } = app;
  const { own } = o;
  const help = /** @type {HTMLDialogElement} */ (byId("help"));

  /**
   * Toggles a panel (or opens it with open set).
   * @param {string} name
   * @param {boolean} [open]
   */
  function openPanel(name, open) {
    const [btnID, panelID] = PANELS[name];
    const btn = maybe(btnID), panel = maybe(panelID);
    if (!btn || !panel) return;
    const show = open ?? panel.hidden;
    panel.hidden = !show;
    btn.setAttribute("aria-expanded", String(show));
    if (name === "chat" && show) {
      btn.classList.remove("unread");
      byId("chat-text").focus();
    }
    app.render();
  }

  /**
   * @param {string} id
   * @param {() => unknown} f
   */
  const onClick = (id, f) => maybe(id)?.addEventListener("click", () => { f(); });

  const toggleMic = () => own.setMic(!S.on.mic, true);
  const toggleCamera = () => own.setCamera(!S.on.camera, true);
  const toggleHand = () => app.ask({ type: "hand", raised: !S.you?.hand });
  onClick("btn-mic", toggleMic);
  onClick("btn-camera", toggleCamera);
  onClick("btn-screen", () => own.setScreen(!S.on.screen));
  onClick("btn-hand", toggleHand);
  for (const name of Object.keys(PANELS)) onClick(PANELS[name][0], () => openPanel(name));
  onClick("btn-help", () => help.showModal());
  onClick("btn-leave", o.leave);
  byId("reactions").addEventListener("click", (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-emoji]") : null;
    if (b instanceof HTMLElement) app.ask({ type: "react", emoji: b.dataset.emoji ?? "" });
  });

  document.addEventListener("keydown", (ev) => {
    if (!S.joined || S.over || ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    if (help.open) return;
    /** @type {Record<string, () => unknown>} */
    const keys = {
      m: toggleMic, v: toggleCamera, h: toggleHand,
      c: () => openPanel("chat"), p: () => openPanel("people"),
      "?": () => help.showModal(),
    };
    const f = keys[ev.key.toLowerCase()];
    if (!f) return;
    ev.preventDefault();
    f();
  });

  /** Labels each toggle by what clicking it does now. */
  function render() {
    byId("btn-mic").textContent = S.on.mic ? "Mute" : "Unmute";
    byId("btn-camera").textContent = S.on.camera ? "Stop video" : "Start video";
    byId("btn-screen").textContent = S.on.screen ? "Stop sharing" : "Share screen";
    byId("btn-hand").textContent = S.you?.hand ? "Lower hand" : "Raise hand";
  }

  return { openPanel, render };
}
