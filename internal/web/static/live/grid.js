// @ts-check
// The stage: the grid of tiles (paged, one of them perhaps pinned, the
// active speaker highlighted, a reaction shown briefly), the shared
// screen shown large, the audio players, and the subscription that asks
// the server for exactly the videos on screen at the sizes they are shown.

import { byId, h } from "./dom.js";

/**
 * @typedef {import("./state.js").App} App
 * @typedef {import("./state.js").Participant} Participant
 */

/**
 * Most tiles on one page: with a screen share, the server's 25 videos. A
 * tile pinned from another page makes one more; subscribe then leaves the
 * last tile shown without video.
 */
export const PAGE = 24;

/**
 * The letters on a tile without video: of the first two words that
 * begin with a letter ("Student 07" is S, not S0), else the first
 * character.
 * @param {string} name
 */
function initials(name) {
  const words = name.split(/\s+/).filter((w) => /^\p{L}/u.test(w));
  if (words.length === 0) return name.trim().slice(0, 1).toUpperCase();
  return words.slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}

/**
 * @param {HTMLVideoElement} video
 * @param {MediaStreamTrack | null} track
 */
function attach(video, track) {
  const cur = video.srcObject instanceof MediaStream ? video.srcObject.getTracks()[0] : null;
  if (cur === track) return;
  video.srcObject = track ? new MediaStream([track]) : null;
  if (track) video.play().catch(() => {});
}

/** @param {App} app */
export function grid(app) {
  const { S } = app;
  /** @type {Map<string, HTMLLIElement>} */
  const tiles = new Map();
  /** @type {Map<string, HTMLAudioElement>} */
  const players = new Map();
  let lastSubscribe = "";

  /** @param {string} id */
  const received = (id) => app.media()?.received(id) ?? null;

  /** The participants in this page's group, pinned first. */
  function roommates() {
    const g = S.you?.group ?? "";
    const all = [...S.people.values()].filter((p) => p.group === g);
    all.sort((a, b) => (a.id === S.pinned ? -1 : b.id === S.pinned ? 1 : 0));
    return all;
  }

  function renderGrid() {
    const el = byId("grid");
    const people = roommates();
    const pages = Math.max(1, Math.ceil(people.length / PAGE));
    S.page = Math.min(Math.max(0, S.page), pages - 1);
    const shown = people.slice(S.page * PAGE, (S.page + 1) * PAGE);
    if (S.pinned && !shown.some((p) => p.id === S.pinned)) {
      const pin = S.people.get(S.pinned);
      if (pin) shown.unshift(pin);
    }
    byId("pager").hidden = pages === 1;
    byId("page-info").textContent = `Page ${S.page + 1} of ${pages}`;
    /** @type {HTMLButtonElement} */ (byId("page-prev")).disabled = S.page === 0;
    /** @type {HTMLButtonElement} */ (byId("page-next")).disabled = S.page >= pages - 1;
    el.dataset.count = String(Math.min(shown.length, 9));
    const keep = new Set(shown.map((p) => p.id));
    for (const [id, tile] of tiles) {
      if (!keep.has(id)) {
        tile.remove();
        tiles.delete(id);
      }
    }
    shown.forEach((p, i) => {
      let tile = tiles.get(p.id);
      if (!tile) {
        tile = newTile(p.id);
        tiles.set(p.id, tile);
      }
      if (el.children[i] !== tile) el.insertBefore(tile, el.children[i] ?? null);
      updateTile(tile, p);
    });
  }

  /** @param {string} id */
  function newTile(id) {
    const video = h("video", { autoplay: true, playsinline: true, "aria-hidden": "true" });
    video.muted = true;
    return h("li", { class: "tile", "data-participant": id }, [
      video,
      h("span", { class: "avatar", "aria-hidden": "true" }),
      h("span", { class: "reaction", "aria-live": "polite" }),
      h("p", { class: "label" }, [h("span", { class: "name" }), h("span", { class: "state" })]),
      h("button", { type: "button", class: "pin secondary", "data-pin": id }),
    ]);
  }

  /**
   * @param {HTMLLIElement} el
   * @param {Participant} p
   */
  function updateTile(el, p) {
    const me = p.id === S.you?.id;
    const media = me ? S.on : p.media;
    const video = /** @type {HTMLVideoElement} */ (el.querySelector("video"));
    /** @type {MediaStreamTrack | null} */
    let track = null;
    if (media.camera) track = me ? S.local.camera : received(`${p.id}/camera`);
    attach(video, track);
    el.classList.toggle("me", me);
    el.classList.toggle("no-video", !track);
    el.classList.toggle("speaking", S.speaker === p.id);
    el.classList.toggle("pinned", S.pinned === p.id);
    el.classList.toggle("hand", p.hand);
    const name = me ? `${p.name} (you)` : p.name;
    /** @type {HTMLElement} */ (el.querySelector(".avatar")).textContent = initials(p.name);
    /** @type {HTMLElement} */ (el.querySelector(".name")).textContent = name + (p.role === "HOST" ? " · host" : "");
    /** @type {HTMLElement} */ (el.querySelector(".state")).textContent =
      `${media.mic ? "" : " · muted"}${p.hand ? " · hand raised" : ""}`;
    /** @type {HTMLElement} */ (el.querySelector(".reaction")).textContent = S.reactions[p.id] ?? "";
    const pin = /** @type {HTMLButtonElement} */ (el.querySelector(".pin"));
    pin.textContent = S.pinned === p.id ? `Unpin ${p.name}` : `Pin ${p.name}`;
    el.setAttribute("aria-label", `${name}${S.speaker === p.id ? ", speaking" : ""}`);
  }

  /** The sharer shown large: the pinned person if sharing, else the first. */
  function sharer() {
    const g = S.you?.group ?? "";
    const sharing = [...S.people.values()].filter((p) => p.group === g && p.media.screen && (p.id !== S.you?.id || S.on.screen));
    return sharing.find((p) => p.id === S.pinned) ?? sharing[0] ?? null;
  }

  function renderScreen() {
    const p = sharer();
    const view = byId("screen-view");
    view.hidden = !p;
    const video = /** @type {HTMLVideoElement} */ (byId("screen-video"));
    if (!p) {
      attach(video, null);
      return;
    }
    const me = p.id === S.you?.id;
    attach(video, me ? S.local.screen : received(`${p.id}/screen`));
    byId("screen-caption").textContent = me ? "You are sharing your screen" : `${p.name} is sharing their screen`;
  }

  function renderAudio() {
    const media = app.media();
    if (!media) return;
    const box = byId("audio");
    const live = new Set();
    for (const t of media.audioTracks()) {
      live.add(t.id);
      if (players.has(t.id)) continue;
      const a = h("audio", { autoplay: true });
      a.srcObject = new MediaStream([t]);
      a.play().catch(() => {});
      box.append(a);
      players.set(t.id, a);
    }
    for (const [id, a] of players) {
      if (!live.has(id)) {
        a.remove();
        players.delete(id);
      }
    }
  }

  /** Asks the server for the videos on screen, each at its tile's size. */
  function subscribe() {
    const signal = app.signal();
    if (!signal || !app.media()) return;
    const dpr = window.devicePixelRatio || 1;
    /** @type {{track: string, width: number, height: number}[]} */
    const video = [];
    const screen = sharer();
    if (screen && screen.id !== S.you?.id) {
      const r = byId("screen-view").getBoundingClientRect();
      video.push({ track: `${screen.id}/screen`, width: Math.round(r.width * dpr), height: Math.round(r.height * dpr) });
    }
    // In the order shown: when a page, a tile pinned from another page
    // and a screen share make more than the server's 25, the last tile
    // goes without video, never the pinned one.
    for (const el of byId("grid").children) {
      const id = /** @type {HTMLElement} */ (el).dataset.participant ?? "";
      const p = S.people.get(id);
      if (!p || id === S.you?.id || !p.media.camera || video.length >= 25) continue;
      const r = el.getBoundingClientRect();
      video.push({ track: `${id}/camera`, width: Math.round(r.width * dpr), height: Math.round(r.height * dpr) });
    }
    // Sizes move by a few pixels as the layout settles; a change of
    // layer needs a real change of size.
    const key = JSON.stringify(video.map((v) => [v.track, Math.round(v.width / 64), Math.round(v.height / 64)]));
    if (key === lastSubscribe) return;
    lastSubscribe = key;
    signal.send({ type: "subscribe", video });
  }

  byId("page-prev").addEventListener("click", () => { S.page--; app.render(); });
  byId("page-next").addEventListener("click", () => { S.page++; app.render(); });
  byId("grid").addEventListener("click", (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-pin]") : null;
    if (!(b instanceof HTMLElement)) return;
    const id = b.dataset.pin ?? "";
    S.pinned = S.pinned === id ? "" : id;
    app.render();
  });

  return {
    /** Draws the tiles, the shared screen and the audio players. */
    render() {
      renderGrid();
      renderScreen();
      renderAudio();
    },
    subscribe,
    /**
     * Forgets what was asked for: a new connection has new peer
     * connections, and must ask for the videos anew.
     */
    resubscribe() {
      lastSubscribe = "";
    },
  };
}
