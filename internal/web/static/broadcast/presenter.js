// @ts-check
// The presenter page of a broadcast class: the preview, Go live (WHIP from
// this page, camera or screen in three simulcast layers) and End, chat
// moderation with the list of banned viewers (each with Unban), polls, the
// viewer count and the stream's health (from this
// page's own statistics when it publishes, from the server's when an
// encoder such as OBS does). The stream keys panel is plain HTML forms;
// this module only adds its copy buttons.

import { Audience } from "./audience.js";
import { publish } from "./rtc.js";
import { Panels, ask, socketURL } from "./panels.js";
import { byId, h, reason, say } from "../live/dom.js";
import { failure, fillPicker, listMediaDevices, stopTrack } from "../live/devices.js";

/** @typedef {import("./audience.js").Msg} Msg */

/**
 * The banned viewers: filled from the welcome (bans are stored, so they
 * are there after a reload or a server restart) and kept by the hosts'
 * banned and unbanned events. Each has an Unban button. Declared before
 * main runs, since a class, unlike a function, is not hoisted.
 */
class Bans {
  /** @param {import("./audience.js").Audience} audience */
  constructor(audience) {
    /** @type {Map<string, string>} user ID → name */
    this.names = new Map();
    this.list = byId("ban-list");
    this.list.addEventListener("click", (ev) => {
      const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-unban]") : null;
      if (b instanceof HTMLElement) ask(audience, { type: "unban", user: b.dataset.unban ?? "" }, byId("chat-error"));
    });
  }

  /** @param {{user: string, name?: string}[]} list */
  reset(list) {
    this.names = new Map(list.map((b) => [b.user, b.name ?? ""]));
    this.render();
  }

  /** @param {Msg} m a banned event */
  add(m) {
    this.names.set(m.user, m.name ?? "");
    this.render();
  }

  /** @param {string} user */
  remove(user) {
    this.names.delete(user);
    this.render();
  }

  /** @param {string} user */
  nameOf(user) {
    return this.names.get(user) ?? "";
  }

  render() {
    byId("bans-empty").hidden = this.names.size > 0;
    this.list.replaceChildren(...[...this.names].map(([user, name]) => {
      const who = name || "A viewer";
      return h("li", { class: "person", "data-user": user }, [
        h("span", { text: who }),
        h("button", { type: "button", class: "secondary small", "data-unban": user, "aria-label": `Unban ${who}`, text: "Unban" }),
      ]);
    }));
  }
}

copyButtons();
const root = document.getElementById("broadcast");
if (root) main(root);

/** Copy buttons: data-copy names the input whose value they copy. */
function copyButtons() {
  document.addEventListener("click", async (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-copy]") : null;
    if (!(b instanceof HTMLButtonElement)) return;
    const input = /** @type {HTMLInputElement | null} */ (document.getElementById(b.dataset.copy ?? ""));
    if (!input) return;
    let done = false;
    try {
      await navigator.clipboard.writeText(input.value);
      done = true;
    } catch {
      // No clipboard permission (or not a secure origin): select the
      // text so that the person can copy it by hand.
      input.select();
    }
    b.dataset.copied = done ? "clipboard" : "manual";
    const was = b.textContent;
    b.textContent = done ? "Copied" : "Press Ctrl+C";
    setTimeout(() => { b.textContent = was; }, 2000);
  });
}

/** @param {HTMLElement} root */
function main(root) {
  const alertEl = byId("bc-alert");
  const statusEl = byId("bc-status");
  const preview = /** @type {HTMLVideoElement} */ (byId("preview"));
  const sourceSelect = /** @type {HTMLSelectElement} */ (byId("source-select"));
  const cameraSelect = /** @type {HTMLSelectElement} */ (byId("camera-select"));
  const micSelect = /** @type {HTMLSelectElement} */ (byId("mic-select"));
  const goLive = /** @type {HTMLButtonElement} */ (byId("btn-go-live"));
  const stop = /** @type {HTMLButtonElement} */ (byId("btn-stop"));
  const end = /** @type {HTMLButtonElement} */ (byId("btn-end"));
  const endConfirm = /** @type {HTMLButtonElement} */ (byId("btn-end-confirm"));
  const token = root.dataset.token ?? "";

  const S = {
    you: "",
    /** @type {string} the server's word for the stream: offline, live, reconnecting, ended */
    stream: "offline",
    viewers: 0,
    ended: false,
    local: {
      /** @type {MediaStreamTrack | null} */ video: null,
      /** @type {MediaStreamTrack | null} */ mic: null,
    },
    /** @type {{bitrate: number, fps: number, dropped: number, lost: number, layers: number, source: string} | null} */
    health: null,
  };
  /** @type {import("./rtc.js").Publish | null} */
  let pub = null;

  const fail = (/** @type {string} */ text) => say(alertEl, text);
  const notice = (/** @type {string} */ text) => say(statusEl, text);

  Object.defineProperty(window, "liveclass", {
    value: Object.freeze({
      state: S,
      get pc() { return pub?.pc ?? null; },
      seen: () => [...audience.seen],
      polls: () => [...panels.polls.polls.values()],
    }),
  });

  // ---------------------------------------------------------------- devices

  /** Asks for the chosen source and microphone, and shows them. */
  async function acquire() {
    /** @type {string[]} */
    const problems = [];
    const screen = sourceSelect.value === "screen";
    cameraSelect.disabled = screen;
    let video = null;
    try {
      const s = screen
        ? await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false })
        : await navigator.mediaDevices.getUserMedia({
          video: {
            // 720p: the top simulcast layer, which HLS is made from. Below
            // it the browser sends fewer layers than the three asked for,
            // and the top one is the first it leaves out.
            width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 },
            ...(cameraSelect.value ? { deviceId: { exact: cameraSelect.value } } : {}),
          },
        });
      video = s.getVideoTracks()[0] ?? null;
      if (video && screen) video.contentHint = "detail";
    } catch (e) {
      problems.push(deviceProblem(screen ? "screen" : "camera", e));
    }
    let mic = null;
    try {
      const s = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, ...(micSelect.value ? { deviceId: { exact: micSelect.value } } : {}) },
      });
      mic = s.getAudioTracks()[0] ?? null;
    } catch (e) {
      problems.push(deviceProblem("microphone", e));
    }
    fail(problems.join(" "));
    const oldVideo = S.local.video, oldMic = S.local.mic;
    S.local.video = video;
    S.local.mic = mic;
    preview.srcObject = video ? new MediaStream([video]) : null;
    preview.classList.toggle("mirror", !screen);
    // Live already: swap the tracks on the same transceivers, no new offer.
    if (pub) {
      const [v, a] = pub.pc.getTransceivers();
      await v?.sender.replaceTrack(video).catch(() => {});
      await a?.sender.replaceTrack(mic).catch(() => {});
    }
    stopTrack(oldVideo);
    stopTrack(oldMic);
    if (video && screen) video.addEventListener("ended", () => { sourceSelect.value = "camera"; acquire(); });
    await listDevices();
  }

  /**
   * @param {"camera" | "screen" | "microphone"} what
   * @param {any} e
   */
  function deviceProblem(what, e) {
    // The classroom's words (devices.js) offer to join without the
    // device; here there is nothing to join, and a screen has its own.
    switch (failure(e)) {
      case "blocked":
        return what === "screen"
          ? "Sharing the screen was refused or cancelled."
          : `Access to your ${what} is blocked. Allow it in your browser's site settings and reload the page.`;
      case "missing":
        return `No ${what} was found.`;
      case "busy":
        return `Your ${what} is in use by another program. Close it and try again.`;
    }
    return `Your ${what} could not be started (${e && e.message ? e.message : "unknown error"}).`;
  }

  async function listDevices() {
    const found = await listMediaDevices();
    if (!found) return;
    // While the screen is sent, its track is no camera: the camera picker
    // stays as it was.
    if (sourceSelect.value === "camera") fillPicker(cameraSelect, found, "videoinput", S.local.video, "camera");
    fillPicker(micSelect, found, "audioinput", S.local.mic, "microphone");
  }

  for (const sel of [sourceSelect, cameraSelect, micSelect]) sel.addEventListener("change", () => { acquire(); });

  // ---------------------------------------------------------------- going live

  goLive.addEventListener("click", async () => {
    if (pub || S.ended) return;
    goLive.disabled = true;
    notice("Going live…");
    try {
      if (!S.local.video && !S.local.mic) await acquire();
      pub = await publish(root.dataset.whip ?? "", token, S.local.video, S.local.mic);
    } catch (e) {
      pub = null;
      goLive.disabled = false;
      notice("");
      fail(publishProblem(e));
      return;
    }
    const p = pub;
    fail("");
    notice("You are live.");
    onAir(true);
    p.pc.addEventListener("connectionstatechange", () => {
      if (pub !== p) return;
      if (p.pc.connectionState === "failed") {
        fail("The connection to the server failed. Go live again.");
        stopStream();
      }
    });
  });

  /** @param {any} e */
  function publishProblem(e) {
    switch (e && e.status) {
      case 401:
        return "The server did not accept your pass: reload the page and try again.";
      case 409:
        return "Another encoder is already live on this class (OBS, or this page in another tab). Stop it first.";
      case 404:
        return "This class cannot be broadcast from here.";
    }
    return `Could not go live: ${reason(e)}`;
  }

  /** @param {boolean} live */
  function onAir(live) {
    byId("on-air").hidden = !live;
    goLive.hidden = live;
    goLive.disabled = false;
    stop.hidden = !live;
  }

  async function stopStream() {
    const p = pub;
    pub = null;
    onAir(false);
    S.health = null;
    showHealth();
    if (p) await p.stop();
  }

  stop.addEventListener("click", async () => {
    await stopStream();
    notice("The stream is stopped. Viewers see that it is reconnecting until you go live again or end the class.");
  });

  end.addEventListener("click", () => {
    endConfirm.hidden = false;
    endConfirm.focus();
  });
  endConfirm.addEventListener("click", async () => {
    endConfirm.disabled = true;
    const ok = await ask(audience, { type: "end" }, alertEl);
    endConfirm.disabled = false;
    if (ok) ended();
  });

  function ended() {
    if (S.ended) return;
    S.ended = true;
    S.stream = "ended";
    stopStream();
    byId("stream-state").textContent = "Ended";
    notice("The class has ended.");
    for (const b of [goLive, stop, end, endConfirm]) b.disabled = true;
    endConfirm.hidden = true;
    audience.close();
  }

  // ---------------------------------------------------------------- health

  const last = { bytes: 0, at: 0 };
  setInterval(async () => {
    if (pub) {
      try {
        S.health = { ...(await pub.health(last)), source: "This page" };
      } catch {
        return;
      }
      showHealth();
    } else {
      last.at = 0;
    }
  }, 1000);

  function showHealth() {
    const hl = S.health;
    byId("health-source").textContent = hl ? hl.source : "Nothing is being sent";
    byId("health-bitrate").textContent = hl ? `${(hl.bitrate / 1000).toFixed(0)} kbit/s` : "–";
    byId("health-fps").textContent = hl ? `${hl.fps.toFixed(0)} frames/s` : "–";
    byId("health-dropped").textContent = hl && hl.dropped >= 0 ? String(hl.dropped) : "–";
    byId("health-lost").textContent = hl ? String(hl.lost) : "–";
    byId("health-layers").textContent = hl && hl.layers ? String(hl.layers) : "–";
  }

  /**
   * The server's view of the stream, when an encoder other than this
   * page publishes.
   * @param {Msg} m
   */
  function serverHealth(m) {
    if (pub) return;
    const hl = m;
    if (!hl.bitrateBps && !hl.packets) return; // nothing is being received
    S.health = {
      bitrate: hl.bitrateBps ?? 0,
      fps: hl.frameRate ?? 0,
      dropped: -1, // an encoder's own drops are not known to the server
      lost: hl.packetsLost ?? 0,
      layers: hl.layers ?? 0,
      source: `Encoder${hl.codec ? ` (${hl.codec.replace(/^video\//, "")})` : ""}, as the server receives it`,
    };
    showHealth();
  }

  // ---------------------------------------------------------------- audience

  const audience = new Audience({
    url: socketURL(root.dataset.audience ?? ""),
    token,
    classID: root.dataset.class ?? "",
    onWelcome: (m) => {
      fail("");
      S.you = m.you?.id ?? S.you;
      panels.welcome(m);
      if (typeof m.viewers === "number") setViewers(m.viewers);
      if (m.stream) setStream(m.stream.state);
      if (m.health) serverHealth(m.health);
      if (typeof m.slowMode === "number") /** @type {HTMLSelectElement} */ (byId("slow-mode")).value = String(m.slowMode);
      bans.reset(m.banned ?? []);
    },
    onMessage: handle,
    onDropped: () => fail("The connection to the audience dropped. Reconnecting…"),
    onClosed: ({ code, error }) => {
      if (S.ended) return;
      if (code === 4010) return ended();
      if (code === 4011) return fail("Your account opened this class in too many tabs or devices; this page's chat and moderation were closed. Reload it to take them back.");
      fail(error ? reason(error) : "The connection to the audience was closed. Reload the page.");
    },
  });
  const panels = new Panels(audience, { host: true, you: () => S.you });
  const bans = new Bans(audience);

  byId("slow-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const seconds = Number(/** @type {HTMLSelectElement} */ (byId("slow-mode")).value);
    if (await ask(audience, { type: "slowmode", seconds }, byId("chat-error"))) {
      notice(seconds ? `Slow mode: one message per ${seconds} seconds per viewer.` : "Slow mode is off.");
    }
  });

  /** @param {Msg} m */
  function handle(m) {
    if (panels.show(m)) return;
    switch (m.type) {
      case "viewers":
        setViewers(m.count ?? 0);
        return;
      case "stream":
        setStream(m.state);
        return;
      case "health":
        serverHealth(m);
        return;
      case "slowmode":
        /** @type {HTMLSelectElement} */ (byId("slow-mode")).value = String(m.seconds);
        return;
      case "muted":
        panels.chat.setMuted(m.user, m.muted);
        notice(m.muted ? `${nameOf(m.user)} is muted: they cannot chat.` : `${nameOf(m.user)} may chat again.`);
        return;
      case "banned":
        bans.add(m);
        notice(`${m.name || nameOf(m.user)} is banned from this class.`);
        return;
      case "unbanned":
        notice(`${bans.nameOf(m.user) || nameOf(m.user)} is no longer banned and may join again.`);
        bans.remove(m.user);
        return;
      case "ended":
        ended();
        return;
      case "error":
        fail(reason(m));
    }
  }

  /**
   * A viewer's name, from the chat they wrote.
   * @param {string} user
   */
  function nameOf(user) {
    for (const li of byId("chat-log").querySelectorAll("li")) {
      const b = li.querySelector(`button[data-user="${CSS.escape(user)}"]`);
      if (b) return li.querySelector(".who")?.textContent ?? "A viewer";
    }
    return "A viewer";
  }

  /** @param {number} n */
  function setViewers(n) {
    S.viewers = n;
    byId("viewer-count").textContent = String(n);
  }

  /** @param {string} st */
  function setStream(st) {
    if (st === "ended") return ended();
    S.stream = st;
    /** @type {Record<string, string>} */
    const words = { offline: "Offline", live: "Live", reconnecting: "Reconnecting (the encoder dropped)" };
    byId("stream-state").textContent = words[st] ?? st;
  }

  addEventListener("pagehide", () => {
    pub?.stop();
    audience.close();
  });

  if (navigator.mediaDevices?.getUserMedia) {
    acquire();
  } else {
    fail("This browser cannot use a camera or microphone here (the page must be served over HTTPS). Publish from OBS with a stream key below.");
  }
  audience.connect();
}

