// @ts-check
// Small DOM and text helpers of the classroom. Everything a participant
// typed is set as text (textContent), never parsed as HTML.

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return /** @type {T} */ (el);
}

/**
 * @param {string} id
 * @returns {HTMLElement | null}
 */
export const maybe = (id) => document.getElementById(id);

/**
 * Creates an element with attributes, and children (strings become text).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | boolean | undefined>} [attrs]
 * @param {(Node | string | null | undefined | false)[]} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/**
 * Shows or hides a message element.
 * @param {HTMLElement} el
 * @param {string} text empty hides it
 */
export function say(el, text) {
  el.textContent = text;
  el.hidden = text === "";
}

/**
 * The skew between the server's clock and ours, from the page's
 * data-server-now, so that breakout timers count down by the server.
 */
export const skew = (() => {
  const s = Date.parse(document.body.dataset.serverNow ?? "");
  return Number.isNaN(s) ? 0 : s - Date.now();
})();

/** @param {number} ms */
export function clock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * Whether a key press comes from a field the person is typing in, where
 * single-letter shortcuts must not fire.
 * @param {EventTarget | null} t
 */
export function typing(t) {
  if (!(t instanceof HTMLElement)) return false;
  const tag = t.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || t.isContentEditable;
}

/**
 * Reports whether what el shows (data) differs from its last rendering,
 * so that a list is rebuilt only when it must: a rebuilt list swaps a
 * button for a copy under the pointer, and closes an open drop-down.
 * @param {HTMLElement} el
 * @param {unknown} data
 */
export function changed(el, data) {
  const sig = JSON.stringify(data);
  if (el.dataset.sig === sig) return false;
  el.dataset.sig = sig;
  return true;
}

/** @param {string} s */
export function sentence(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/**
 * A refusal or failure as a sentence to show.
 * @param {any} e
 */
export function reason(e) {
  return e && typeof e.message === "string" ? sentence(e.message) : "Something went wrong.";
}
