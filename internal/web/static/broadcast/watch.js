// @ts-check
// The viewer page of a broadcast class: the player (WebRTC through WHEP,
// or HLS when WebRTC fails or the server has no room for more WebRTC
// viewers), the latency indicator, chat, reactions, polls and the viewer
// count over the audience connection.

import { Audience } from "./audience.js";
import { view, HTTPError } from "./rtc.js";
import { Panels, ask, socketURL } from "./panels.js";
import { byId, reason, say } from "../live/dom.js";

/** @typedef {import("./audience.js").Msg} Msg */
/** @typedef {"offline" | "live" | "reconnecting" | "ended"} StreamState */

/** How long WebRTC may take to connect before the page plays HLS instead. */
const CONNECT_MS = 10_000;

const root = document.getElementById("watch");
if (root) main(root);

/** @param {HTMLElement} root */
function main(root) {
  const video = /** @type {HTMLVideoElement} */ (byId("video"));
  const stateEl = byId("player-state");
  const alertEl = byId("watch-alert");
  const latencyEl = byId("latency");
  const soundBtn = /** @type {HTMLButtonElement} */ (byId("btn-sound"));
  const token = root.dataset.token ?? "";
  const host = false; // hosts moderate and run polls from the presenter page

  const S = {
    /** @type {"" | "webrtc" | "hls"} */ mode: "",
    /** @type {StreamState} */ stream: "offline",
    you: "",
    viewers: 0,
    ended: false,
    wasLive: false,
    hlsURL: root.dataset.hls ?? "",
  };
  /** @type {import("./rtc.js").View | null} */
  let rtc = null;
  /** @type {any} the hls.js instance, when it plays */
  let hls = null;
  let hlsRetry = 0;
  /** @type {string[]} */
  const hlsErrors = [];
  let lastRecovery = 0;

  const fail = (/** @type {string} */ text) => say(alertEl, text);
  const showState = () => {
    /** @type {Record<StreamState, string>} */
    const words = {
      offline: "Waiting for the stream to start…",
      live: "",
      reconnecting: "Reconnecting…",
      ended: "The class has ended",
    };
    let text = words[S.stream];
    // Stopped on purpose after it was live: it may well come back.
    if (S.stream === "offline" && S.wasLive) text = "The stream has stopped. Waiting for it to come back…";
    if (!text && S.mode === "") text = "Connecting…";
    stateEl.textContent = text;
    stateEl.hidden = text === "";
  };

  // What tests (and curious developers) can look at.
  Object.defineProperty(window, "liveclass", {
    value: Object.freeze({
      state: S,
      decoded: async () => (rtc ? (await rtc.stats()).decoded : 0),
      /** The HLS player's last errors, newest last. */
      hlsErrors,
      currentTime: () => video.currentTime,
    }),
  });

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
      if (m.stream?.hls) S.hlsURL = m.stream.hls;
      if (m.stream) setStream(m.stream.state);
      slowNote(m.slowMode ?? 0);
      if (m.muted) fail("A host has muted you: you can no longer write in the chat.");
    },
    onMessage: handle,
    onDropped: () => fail("The connection to the chat dropped. Reconnecting…"),
    onClosed: ({ code, error }) => {
      if (S.ended) return;
      if (code === 4010) return ended();
      if (code === 4009) {
        // Banned: out of the class, not only out of its chat.
        stopPlayer();
        S.stream = "offline";
        S.mode = "";
        stateEl.textContent = "Removed from the class";
        stateEl.hidden = false;
        return fail("A host has removed you from this class.");
      }
      if (code === 4011) {
        // Too many tabs of one account: the newest ones keep the class.
        stopPlayer();
        return fail("This class is open in too many of your tabs or devices; this one was closed. Reload it to watch here.");
      }
      const why = error ? reason(error) : "The chat connection was closed.";
      fail(code === 4003 || code === 4001 || code === 4004 ? `You cannot watch this class: ${why}` : why);
    },
  });
  const panels = new Panels(audience, { host, you: () => S.you });

  /** @param {Msg} m */
  function handle(m) {
    if (panels.show(m)) return;
    switch (m.type) {
      case "viewers":
        setViewers(m.count ?? 0);
        return;
      case "stream":
        if (m.hls && m.hls !== S.hlsURL) renewHLS(m.hls, m.state);
        setStream(m.state);
        return;
      case "slowmode":
        slowNote(m.seconds);
        return;
      case "ended":
        ended();
        return;
      case "muted":
        if (m.user === S.you) fail(m.muted ? "A host has muted you: you can no longer write in the chat." : "");
        return;
      case "banned":
        if (m.user === S.you) fail("A host has removed you from this class.");
        return;
      case "error":
        fail(reason(m));
    }
  }

  /** @param {number} seconds */
  function slowNote(seconds) {
    byId("chat-slow").textContent = seconds > 0 ? `Slow mode: one message every ${seconds} seconds.` : "";
  }

  /** @param {number} n */
  function setViewers(n) {
    S.viewers = n;
    byId("viewer-count").textContent = String(n);
  }

  /** @param {StreamState} st */
  function setStream(st) {
    if (st === "ended") return ended();
    const was = S.stream;
    S.stream = st;
    if (st === "live") S.wasLive = true;
    showState();
    // HLS has nothing to play until the stream is live: start (again) then.
    if (st === "live" && was !== "live" && S.mode === "hls") startHLS(S.hlsURL);
  }

  function ended() {
    if (S.ended) return;
    S.ended = true;
    S.stream = "ended";
    showState();
    stopPlayer();
    byId("ended").hidden = false;
    for (const el of root.querySelectorAll("#chat-form button, #chat-form input, #reactions button, #poll-list button")) {
      /** @type {HTMLButtonElement} */ (el).disabled = true;
    }
    audience.close();
  }

  // ---------------------------------------------------------------- player

  function stopPlayer() {
    rtc?.stop();
    rtc = null;
    hls?.destroy();
    hls = null;
    video.srcObject = null;
    video.removeAttribute("src");
  }

  soundBtn.addEventListener("click", () => {
    video.muted = !video.muted;
    if (!video.muted) video.play().catch(() => {});
    soundLabel();
  });
  const soundLabel = () => { soundBtn.textContent = video.muted ? "Unmute sound" : "Mute sound"; };

  /** Plays with sound if the browser lets us, muted otherwise. */
  async function play() {
    try {
      video.muted = false;
      await video.play();
    } catch {
      video.muted = true;
      await video.play().catch(() => {});
    }
    soundLabel();
  }

  async function startWebRTC() {
    try {
      rtc = await view(root.dataset.whep ?? "", token);
    } catch (e) {
      if (e instanceof HTTPError && e.status === 503) {
        if (e.body && typeof e.body.hls === "string" && e.body.hls) S.hlsURL = e.body.hls;
        return fallback("The live video is full; playing the stream over HLS.");
      }
      if (e instanceof HTTPError && (e.status === 401 || e.status === 403)) {
        fail(`You cannot watch this class: ${reason(e)}`);
        S.mode = "";
        stateEl.textContent = "Not allowed";
        return;
      }
      return fallback(`WebRTC did not start (${reason(e)}); playing the stream over HLS.`);
    }
    const r = rtc;
    S.mode = "webrtc";
    video.srcObject = r.stream;
    play();
    showState();
    const timer = setTimeout(() => {
      if (rtc === r && r.pc.connectionState !== "connected") {
        r.stop();
        rtc = null;
        fallback("WebRTC could not connect; playing the stream over HLS.");
      }
    }, CONNECT_MS);
    r.pc.addEventListener("connectionstatechange", () => {
      if (rtc !== r) return;
      if (r.pc.connectionState === "connected") clearTimeout(timer);
      if (r.pc.connectionState === "failed") {
        clearTimeout(timer);
        r.stop();
        rtc = null;
        fallback("The WebRTC connection failed; playing the stream over HLS.");
      }
    });
  }

  /** @param {string} why */
  function fallback(why) {
    if (S.ended) return;
    if (!S.hlsURL) {
      S.mode = "";
      fail(why.replace(/; playing.*$/, ". This server offers no HLS fallback: reload the page to try again."));
      return;
    }
    S.mode = "hls";
    say(byId("watch-alert"), "");
    latencyEl.dataset.note = why;
    startHLS(S.hlsURL);
  }

  /** Loads the vendored hls.js once, as a classic script (it is UMD). */
  let hlsLib = /** @type {Promise<any> | null} */ (null);
  function loadHLS() {
    hlsLib ??= new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = root.dataset.vendor ?? "";
      s.onload = () => resolve(/** @type {any} */ (window).Hls);
      s.onerror = () => reject(new Error("the HLS player could not be loaded"));
      document.head.append(s);
    });
    return hlsLib;
  }

  /**
   * Takes a renewed signed URL. The server renews it every hour and the
   * old one expires an hour later, so a player watching for hours moves
   * to the new one now, while it still plays, rather than on a 403.
   * @param {string} url
   * @param {StreamState} st
   */
  function renewHLS(url, st) {
    const had = S.hlsURL;
    S.hlsURL = url;
    if (!had || S.mode !== "hls" || st !== "live" || S.stream !== "live") return;
    if (hls) hls.loadSource(url);
    else if (video.src) video.src = url;
  }

  /** @param {string} url */
  async function startHLS(url) {
    if (S.ended) return;
    showState();
    if (video.canPlayType("application/vnd.apple.mpegurl") && !("MediaSource" in window)) {
      video.srcObject = null;
      video.src = url;
      play();
      return;
    }
    let Hls;
    try {
      Hls = await loadHLS();
    } catch (e) {
      fail(reason(e));
      return;
    }
    if (!Hls || !Hls.isSupported()) {
      if (video.canPlayType("application/vnd.apple.mpegurl")) {
        video.src = url;
        play();
      } else {
        fail("This browser cannot play the stream. Try a recent Chrome, Firefox, Edge or Safari.");
      }
      return;
    }
    hls?.destroy();
    // The light build, in the page's own thread: the page's security
    // policy allows no worker from a blob.
    const h = new Hls({ enableWorker: false, lowLatencyMode: true, liveSyncDurationCount: 2, manifestLoadingMaxRetry: 2 });
    hls = h;
    video.srcObject = null;
    h.on(Hls.Events.MANIFEST_PARSED, () => { hlsRetry = 0; play(); });
    h.on(Hls.Events.ERROR, (/** @type {any} */ _ev, /** @type {any} */ data) => {
      hlsErrors.push(`${data.type}/${data.details}${data.fatal ? " (fatal)" : ""}`);
      if (hlsErrors.length > 20) hlsErrors.shift();
      if (!data.fatal || hls !== h) return;
      // A media error is recovered in place once; again soon after (the
      // packager restarted and its stream no longer follows on from the
      // buffered one), the player starts afresh from the live edge.
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && Date.now() - lastRecovery > 5000) {
        lastRecovery = Date.now();
        h.recoverMediaError();
        return;
      }
      // The playlist is not there yet (the stream is starting), went away
      // (the publisher dropped), or the media would not play: try again,
      // less and less often.
      h.destroy();
      hls = null;
      hlsRetry++;
      setTimeout(() => { if (!hls && S.mode === "hls") startHLS(S.hlsURL); }, Math.min(1000 * hlsRetry, 5000));
    });
    h.loadSource(url);
    h.attachMedia(video);
  }

  // ---------------------------------------------------------------- latency

  setInterval(async () => {
    if (S.mode === "webrtc" && rtc) {
      const s = await rtc.stats();
      latencyEl.textContent = s.decoded > 0 ? `Latency: ${s.latency.toFixed(2)} s (WebRTC)` : "Latency: – (WebRTC)";
    } else if (S.mode === "hls") {
      let l = hls && typeof hls.latency === "number" && hls.latency > 0 ? hls.latency : 0;
      if (!hls && video.seekable.length) l = video.seekable.end(video.seekable.length - 1) - video.currentTime;
      latencyEl.textContent = l > 0 ? `Latency: ${l.toFixed(1)} s (HLS)` : "Latency: – (HLS)";
    }
  }, 1000);

  // ---------------------------------------------------------------- reactions

  byId("reactions").addEventListener("click", (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-emoji]") : null;
    if (b instanceof HTMLElement) ask(audience, { type: "react", emoji: b.dataset.emoji ?? "" }, byId("chat-error"));
  });

  addEventListener("pagehide", () => {
    rtc?.stop();
    audience.close();
  });

  showState();
  audience.connect();
  startWebRTC();
}
