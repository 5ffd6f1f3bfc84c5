// @ts-check
// liveclass page enhancements. Every page works without this module; it
// only shows times in the reader's zone, runs countdowns, reveals Join
// when the join window opens, and asks before destructive actions.

/**
 * The server's clock minus ours, in milliseconds. Join opens by the
 * server's clock, so a wrong clock on this device must not hide or show
 * it early.
 */
const skew = (() => {
  const s = Date.parse(document.body.dataset.serverNow ?? "");
  return Number.isNaN(s) ? 0 : s - Date.now();
})();

/** @returns {number} the server's "now" in milliseconds */
const serverNow = () => Date.now() + skew;

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", year: "numeric",
  hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** Rewrites <time data-local> in the reader's own zone. */
function localTimes() {
  for (const el of document.querySelectorAll("time[data-local]")) {
    const t = Date.parse(el.getAttribute("datetime") ?? "");
    if (Number.isNaN(t)) continue;
    el.textContent = (el.hasAttribute("data-time-only") ? timeOnly : dateTime).format(t);
  }
}

/** @param {number} ms */
function countdownText(ms) {
  if (ms <= 0) return "now";
  let s = Math.round(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m ${s}s`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** Ticks countdowns and reveals Join links whose window has opened. */
function tick() {
  const now = serverNow();
  for (const el of document.querySelectorAll("[data-countdown]")) {
    const t = Date.parse(/** @type {HTMLElement} */ (el).dataset.countdown ?? "");
    if (!Number.isNaN(t)) el.textContent = countdownText(t - now);
  }
  for (const el of document.querySelectorAll("[data-opens-at]")) {
    const link = /** @type {HTMLElement} */ (el);
    const t = Date.parse(link.dataset.opensAt ?? "");
    if (Number.isNaN(t) || now < t) continue;
    link.hidden = false;
    link.removeAttribute("data-opens-at");
    for (const hint of document.querySelectorAll("[data-join-hint]")) hint.remove();
  }
}

/** Schedules the next tick on the next whole second of the server clock. */
function schedule() {
  tick();
  setTimeout(schedule, 1000 - (serverNow() % 1000) + 5);
}

/** Asks before submitting forms marked data-confirm (cancelling a class). */
function confirmations() {
  document.addEventListener("submit", (ev) => {
    const form = /** @type {HTMLFormElement} */ (ev.target);
    const q = form.dataset?.confirm;
    if (q && !window.confirm(q)) ev.preventDefault();
  });
}

/** @param {number} n */
const pad = (n) => String(n).padStart(2, "0");

/**
 * The class form arrives with times in UTC (the server cannot know the
 * reader's zone). Move them into the browser's zone and say so in the
 * hidden timeZone field, which the server reads them in.
 */
function classFormZone() {
  const tz = /** @type {HTMLInputElement | null} */ (document.querySelector("input[data-time-zone]"));
  if (!tz) return;
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!local || tz.value !== "UTC" || local === "UTC") return;
  for (const name of ["startTime", "endTime"]) {
    const input = /** @type {HTMLInputElement | null} */ (tz.form?.elements.namedItem(name) ?? null);
    if (!input || !input.value) continue;
    const t = new Date(input.value + "Z");
    if (Number.isNaN(t.getTime())) continue;
    input.value = `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}` +
      `T${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
  }
  tz.value = local;
  for (const el of document.querySelectorAll("[data-time-zone-name]")) el.textContent = local;
}

localTimes();
classFormZone();
confirmations();
schedule();
