// @ts-check
// The live classroom page: the device check before joining, then the room
// itself (video grid, screen share, control bar, chat, participants, and
// for hosts the room controls, hand queue, breakout rooms and polls). The
// server renders the shell and the join pass; this module speaks the
// signalling protocol (signal.js) and carries the media (media.js).

import { Signal } from "./signal.js";
import { Media } from "./media.js";
import { byId, maybe, h, say, skew, clock, typing } from "./dom.js";

/**
 * @typedef {{mic: boolean, camera: boolean, screen: boolean}} MediaState
 * @typedef {{id: string, name: string, role: string, media: MediaState, hand: boolean, group: string, joinedAt: string}} Participant
 * @typedef {{id: string, participant: string, source: string, layers?: string[]}} TrackInfo
 * @typedef {{id: string, question: string, options: string[], multiple: boolean, closed: boolean, yourVote?: number[]}} Poll
 * @typedef {{poll: string, counts: number[], voters: number}} Results
 * @typedef {{id: string, from: string, fromName: string, to: string, group: string, text: string, sentAt: string}} ChatMessage
 * @typedef {import("./signal.js").Msg} Msg
 */

/** Most tiles on one page; with a screen share that is at most 25 videos. */
const PAGE = 24;
/** How long a reaction stays on a tile. */
const REACTION_MS = 4000;

const root = maybe("live");
if (root && root.dataset.service !== "IVS") main(root);

/** @param {HTMLElement} root */
function main(root) {
  const host = root.hasAttribute("data-host");
  const alertEl = byId("live-alert");
  const statusEl = byId("live-status");

  const S = {
    /** @type {Participant | null} */ you: null,
    /** @type {Map<string, Participant>} */ people: new Map(),
    /** @type {string[]} */ hands: [],
    locked: false,
    micsLocked: false,
    /** @type {{groups: {id: string, participants: string[]}[], timerEndsAt: string | null, you: string}} */
    breakouts: { groups: [], timerEndsAt: null, you: "" },
    /** @type {Map<string, Poll>} */ polls: new Map(),
    /** @type {Map<string, Results>} */ results: new Map(),
    /** @type {TrackInfo[]} */ tracks: [],
    speaker: "",
    pinned: "",
    page: 0,
    quality: { server: 3, local: 3 },
    /** What this page sends: the devices' tracks, and whether each is on. */
    local: {
      /** @type {MediaStreamTrack | null} */ camera: null,
      /** @type {MediaStreamTrack | null} */ mic: null,
      /** @type {MediaStreamTrack | null} */ screen: null,
    },
    on: { mic: false, camera: false, screen: false },
    /** @type {Record<string, string>} */ reactions: {},
    joined: false,
    over: false,
  };

  /** @type {Media | null} */
  let media = null;
  /** @type {Signal | null} */
  let signal = null;
  // Messages are handled one at a time, in the order they came: an ICE
  // candidate must not overtake the offer it belongs to.
  /** @type {Promise<void>} */
  let inbox = Promise.resolve();

  // What tests (and curious developers) can look at.
  Object.defineProperty(window, "liveclass", {
    value: Object.freeze({
      state: S,
      get pub() { return media?.pub ?? null; },
      get sub() { return media?.sub ?? null; },
      get mapping() { return { ...(media?.mapping ?? {}) }; },
      decoded: () => media ? media.decoded() : Promise.resolve({}),
      tracks: () => S.tracks.map((t) => t.id),
      you: () => S.you?.id ?? "",
    }),
  });

  /** @param {string} text */
  const fail = (text) => say(alertEl, text);
  /** @param {string} text */
  const notice = (text) => say(statusEl, text);
  /** @param {any} e */
  const reason = (e) => (e && typeof e.message === "string" ? sentence(e.message) : "Something went wrong.");

  // ---------------------------------------------------------------- before joining

  const preview = /** @type {HTMLVideoElement} */ (byId("preview"));
  const cameraSelect = /** @type {HTMLSelectElement} */ (byId("camera-select"));
  const micSelect = /** @type {HTMLSelectElement} */ (byId("mic-select"));
  const meter = /** @type {HTMLMeterElement} */ (byId("mic-level"));
  const joinMuted = /** @type {HTMLInputElement} */ (byId("join-muted"));
  const joinCameraOff = /** @type {HTMLInputElement} */ (byId("join-camera-off"));
  const joinButton = /** @type {HTMLButtonElement} */ (byId("join-button"));
  /** @type {AudioContext | null} */
  let audioCtx = null;
  let metering = 0;

  const qualitySelect = /** @type {HTMLSelectElement} */ (byId("quality-select"));
  /**
   * The camera's capture size: the top simulcast layer. A slow uplink or
   * machine is better served by a smaller one than by dropped frames.
   * @param {string} deviceId
   */
  const videoConstraints = (deviceId) => {
    const height = Number(qualitySelect.value) || 720;
    return {
      width: { ideal: Math.round(height * 16 / 9) }, height: { ideal: height },
      frameRate: { ideal: height > 360 ? 24 : 15, max: 30 },
      ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
    };
  };
  /** @param {string} deviceId */
  const audioConstraints = (deviceId) => ({
    echoCancellation: true, noiseSuppression: true, autoGainControl: true,
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
  });

  /** Asks for the chosen camera and microphone, and shows them. */
  async function acquire() {
    stopTrack(S.local.camera);
    stopTrack(S.local.mic);
    S.local.camera = S.local.mic = null;
    /** @type {string[]} */
    const problems = [];
    for (const kind of /** @type {const} */ (["camera", "mic"])) {
      try {
        const s = await navigator.mediaDevices.getUserMedia(kind === "camera"
          ? { video: videoConstraints(cameraSelect.value) }
          : { audio: audioConstraints(micSelect.value) });
        S.local[kind] = s.getTracks()[0] ?? null;
      } catch (e) {
        problems.push(deviceProblem(kind, e));
      }
    }
    fail(problems.join(" "));
    preview.srcObject = S.local.camera ? new MediaStream([S.local.camera]) : null;
    meterOn();
    await listDevices();
  }

  /**
   * @param {"camera" | "mic"} kind
   * @param {any} e
   */
  function deviceProblem(kind, e) {
    const what = kind === "camera" ? "camera" : "microphone";
    switch (e && e.name) {
      case "NotAllowedError":
      case "SecurityError":
        return `Access to your ${what} is blocked. Allow it in your browser's site settings and reload the page; you can still join without it.`;
      case "NotFoundError":
      case "OverconstrainedError":
        return `No ${what} was found. You can still join without it.`;
      case "NotReadableError":
        return `Your ${what} is in use by another program. Close it and reload the page.`;
    }
    return `Your ${what} could not be started (${e && e.message ? e.message : "unknown error"}).`;
  }

  async function listDevices() {
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return;
    }
    /**
     * @param {HTMLSelectElement} sel
     * @param {MediaDeviceKind} kind
     * @param {MediaStreamTrack | null} current
     * @param {string} noun
     */
    const fill = (sel, kind, current, noun) => {
      const chosen = current?.getSettings().deviceId ?? sel.value;
      sel.replaceChildren(h("option", { value: "", text: `Default ${noun}` }));
      let n = 0;
      for (const d of devices) {
        if (d.kind !== kind || !d.deviceId) continue;
        n++;
        sel.append(h("option", { value: d.deviceId, text: d.label || `${sentence(noun)} ${n}`, selected: d.deviceId === chosen }));
      }
    };
    fill(cameraSelect, "videoinput", S.local.camera, "camera");
    fill(micSelect, "audioinput", S.local.mic, "microphone");
  }

  /** Runs the microphone level meter (WebAudio) while the device check shows. */
  function meterOn() {
    cancelAnimationFrame(metering);
    if (!S.local.mic) {
      meter.value = 0;
      return;
    }
    try {
      audioCtx ??= new AudioContext();
      const src = audioCtx.createMediaStreamSource(new MediaStream([S.local.mic]));
      const analyser = audioCtx.createAnalyser();
      analyser.fftSize = 512;
      src.connect(analyser);
      const buf = new Float32Array(analyser.fftSize);
      const loop = () => {
        analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const v of buf) sum += v * v;
        // RMS to a 0..1 scale that moves visibly for speech.
        meter.value = Math.min(1, Math.sqrt(sum / buf.length) * 4);
        metering = requestAnimationFrame(loop);
      };
      loop();
    } catch {
      meter.value = 0;
    }
  }

  function meterOff() {
    cancelAnimationFrame(metering);
    audioCtx?.close().catch(() => {});
    audioCtx = null;
  }

  cameraSelect.addEventListener("change", () => { acquire(); });
  micSelect.addEventListener("change", () => { acquire(); });
  qualitySelect.addEventListener("change", () => { acquire(); });
  joinButton.addEventListener("click", join);
  if (navigator.mediaDevices?.getUserMedia) {
    acquire();
  } else {
    fail("This browser cannot use a camera or microphone here (the page must be served over HTTPS).");
  }

  function join() {
    joinButton.disabled = true;
    notice("Joining…");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    signal = new Signal({
      url: `${proto}//${location.host}${root.dataset.signal}`,
      token: root.dataset.token ?? "",
      classID: root.dataset.class ?? "",
      muted: () => !(S.joined ? S.on.mic : !joinMuted.checked && !!S.local.mic),
      onJoined: (m) => { inbox = inbox.then(() => joined(m)).catch(report); },
      onMessage: (m) => { inbox = inbox.then(() => handle(m)).catch(report); },
      onClosed: closed,
      onDropped: (n) => {
        S.quality.server = 0;
        showQuality();
        fail(n === 1 ? "The connection dropped. Reconnecting…" : `The connection dropped. Reconnecting (attempt ${n})…`);
        media?.close();
        media = null;
      },
    });
    signal.connect();
  }

  /** @param {any} e */
  function report(e) {
    console.error("liveclass:", e);
  }

  // ---------------------------------------------------------------- in the room

  /** @param {Msg} m */
  async function joined(m) {
    const first = !S.joined;
    const st = m.room;
    S.you = m.you;
    S.people = new Map(st.participants.map((/** @type {Participant} */ p) => [p.id, p]));
    S.hands = st.hands ?? [];
    S.locked = st.locked;
    S.micsLocked = st.micsLocked;
    S.breakouts = st.breakouts;
    S.polls = new Map(st.polls.map((/** @type {Poll} */ p) => [p.id, p]));
    S.results = new Map(st.results.map((/** @type {Results} */ r) => [r.poll, r]));
    S.tracks = [];
    // A new connection has new peer connections: ask for the videos anew,
    // and judge its quality afresh (the server reports changes only).
    lastSubscribe = "";
    S.quality = { server: 3, local: 3 };
    lastLost = lastReceived = 0;
    showQuality();
    if (first) {
      S.joined = true;
      meterOff();
      preview.srcObject = null;
      byId("prejoin").hidden = true;
      byId("room").hidden = false;
      S.on.camera = !!S.local.camera && !joinCameraOff.checked;
      if (!S.on.camera) stopCamera();
      byId("chat-log").replaceChildren();
      for (const c of st.chat) addChat(c);
      notice("You are in the classroom.");
      fail("");
      startTimers();
    } else {
      fail("");
      notice("Reconnected.");
    }
    // The microphone follows the room: joining muted, or microphones
    // locked by a host, starts it off.
    S.on.mic = !!m.you.media.mic && !!S.local.mic;
    media?.close();
    const md = new Media(/** @type {Signal} */ (signal), {
      iceServers: m.iceServers ?? [],
      onChange: () => { if (media === md) render(); },
      onState: (pc, state) => {
        if (media !== md) return;
        if (state === "failed" || state === "disconnected") S.quality.local = pc === "sub" ? 0 : Math.min(S.quality.local, 1);
        showQuality();
      },
    });
    media = md;
    // Not awaited: its answer arrives through the inbox this runs in.
    md.start(S.on.camera ? S.local.camera : null, S.on.mic ? S.local.mic : null, S.on.screen ? S.local.screen : null)
      .catch((e) => fail(`Could not send your camera and microphone: ${reason(e)}`));
    sendMedia();
    render();
  }

  /**
   * Tells the room what this page sends.
   * @returns {Promise<boolean>} whether the room took it
   */
  async function sendMedia() {
    if (!signal) return false;
    try {
      await signal.request({ type: "media", mic: S.on.mic, camera: S.on.camera, screen: S.on.screen });
      return true;
    } catch (e) {
      fail(reason(e));
      return false;
    }
  }

  /** @param {Msg} m */
  async function handle(m) {
    switch (m.type) {
      case "offer": case "answer": case "candidate": case "mapping":
        await media?.handle(m);
        return;
      case "tracks":
        S.tracks = m.tracks;
        break;
      case "participant.joined":
      case "participant.updated": {
        /** @type {Participant} */
        const p = m.participant;
        S.people.set(p.id, p);
        if (p.id === S.you?.id) S.you = p;
        break;
      }
      case "participant.left":
        S.people.delete(m.participant);
        if (S.pinned === m.participant) S.pinned = "";
        break;
      case "chat":
        addChat(m);
        if (byId("chat-panel").hidden) byId("btn-chat").classList.add("unread");
        return;
      case "hands":
        S.hands = m.queue;
        break;
      case "reaction":
        S.reactions[m.participant] = m.emoji;
        setTimeout(() => {
          if (S.reactions[m.participant] === m.emoji) delete S.reactions[m.participant];
          render();
        }, REACTION_MS);
        break;
      case "speaker":
        S.speaker = m.participant;
        break;
      case "quality":
        if (m.participant === S.you?.id) {
          S.quality.server = m.level;
          showQuality();
        }
        qualities.set(m.participant, m.level);
        break;
      case "breakouts": {
        const before = S.breakouts.you;
        S.breakouts = m;
        if (before !== m.you) notice(m.you ? `You are now in ${groupName(m.you)}.` : "You are back in the main room.");
        break;
      }
      case "breakouts.broadcast":
        notice(`Message to every room: ${m.text}`);
        addChat({ id: "", from: m.from, fromName: nameOf(m.from), to: "everyone", group: "", text: m.text, sentAt: new Date().toISOString() }, "To every room");
        return;
      case "poll":
        S.polls.set(m.poll.id, m.poll);
        if (!m.poll.closed && !host) openPanel("polls", true);
        break;
      case "poll.results":
        S.results.set(m.poll, m);
        break;
      case "muted":
        await setMic(false, false);
        notice(`${nameOf(m.by)} muted your microphone.${S.micsLocked && !host ? "" : " You can unmute yourself."}`);
        break;
      case "videoStopped":
        await setCamera(false, false);
        notice(`${nameOf(m.by)} stopped your video.`);
        break;
      case "locked":
        S.locked = m.room;
        S.micsLocked = m.mics;
        if (!host) notice(m.mics ? "A host has locked microphones." : "");
        break;
      case "removed":
        leaveRoom(`${nameOf(m.by)} removed you from the class. You cannot join again with this pass.`, false);
        return;
      case "ended":
        leaveRoom("The class has ended. Thank you for taking part.", false);
        return;
      case "replaced":
        leaveRoom("You joined this class from another tab or device, so this page left the room.", true);
        return;
      case "error":
        fail(reason(m));
        return;
      default:
        return;
    }
    render();
  }

  /** @type {Map<string, number>} */
  const qualities = new Map();

  /**
   * @param {{code: number, reason: string, error?: import("./signal.js").SignalError}} why
   */
  function closed(why) {
    if (S.over) return;
    const r = why.error?.reason;
    if (r === "ended" || why.code === 4010) return leaveRoom("The class has ended.", false);
    if (r === "removed") return leaveRoom("You were removed from this class and cannot join again with this pass.", false);
    if (r === "locked") return leaveRoom("The room is locked: a host must unlock it before you can join.", true);
    if (r === "full") return leaveRoom("The class is full.", true);
    if (why.code === 4011) return leaveRoom("You joined this class from another tab or device, so this page left the room.", true);
    if (why.error) return leaveRoom(`You could not join: ${reason(why.error)}`, true);
    if (!S.joined) return leaveRoom("The classroom server could not be reached. Check your connection and try again.", true);
    leaveRoom("The connection was lost and could not be restored.", true);
  }

  /**
   * Ends this page's presence: media off, the room hidden, the reason
   * shown.
   * @param {string} why
   * @param {boolean} mayRejoin
   */
  function leaveRoom(why, mayRejoin) {
    if (S.over) return;
    S.over = true;
    signal?.close();
    media?.close();
    media = null;
    meterOff();
    for (const k of /** @type {const} */ (["camera", "mic", "screen"])) stopTrack(S.local[k]);
    byId("prejoin").hidden = true;
    byId("room").hidden = true;
    say(alertEl, "");
    say(statusEl, "");
    byId("left-reason").textContent = why;
    byId("rejoin").hidden = !mayRejoin;
    byId("left").hidden = false;
    stopTimers();
  }

  // ---------------------------------------------------------------- own media

  /**
   * @param {boolean} on
   * @param {boolean} tell tell the room (false when the room told us)
   */
  async function setMic(on, tell) {
    if (on && !host && S.micsLocked) {
      fail("A host has locked microphones: you cannot unmute now.");
      return;
    }
    if (on && !S.local.mic) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ audio: audioConstraints(micSelect.value) });
        S.local.mic = s.getAudioTracks()[0];
      } catch (e) {
        fail(deviceProblem("mic", e));
        return;
      }
    }
    S.on.mic = on;
    await media?.setTrack("mic", on ? S.local.mic : null);
    if (tell && !(await sendMedia()) && on) {
      // Refused (microphones locked meanwhile): stay muted.
      S.on.mic = false;
      await media?.setTrack("mic", null);
    }
    render();
  }

  /**
   * @param {boolean} on
   * @param {boolean} tell
   */
  async function setCamera(on, tell) {
    if (on && (!S.local.camera || S.local.camera.readyState === "ended")) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ video: videoConstraints(cameraSelect.value) });
        S.local.camera = s.getVideoTracks()[0];
      } catch (e) {
        fail(deviceProblem("camera", e));
        return;
      }
    }
    S.on.camera = on;
    await media?.setTrack("camera", on ? S.local.camera : null);
    // Off means off: the camera's light goes out too.
    if (!on) stopCamera();
    if (tell) await sendMedia();
    render();
  }

  function stopCamera() {
    stopTrack(S.local.camera);
    S.local.camera = null;
  }

  /** @param {boolean} on */
  async function setScreen(on) {
    if (on) {
      try {
        const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 5, max: 15 } }, audio: false });
        S.local.screen = s.getVideoTracks()[0];
      } catch (e) {
        const name = e && /** @type {any} */ (e).name;
        fail(name === "NotAllowedError" ? "Screen sharing was not allowed." : `Your screen could not be shared: ${reason(e)}`);
        return;
      }
      S.local.screen.addEventListener("ended", () => { if (S.on.screen) setScreen(false); });
    }
    S.on.screen = on;
    try {
      await media?.setTrack("screen", on ? S.local.screen : null);
    } catch (e) {
      fail(`Your screen could not be shared: ${reason(e)}`);
    }
    if (!on) {
      stopTrack(S.local.screen);
      S.local.screen = null;
    }
    await sendMedia();
    render();
  }

  // ---------------------------------------------------------------- controls

  /**
   * @param {string} id
   * @param {() => unknown} f
   */
  const onClick = (id, f) => maybe(id)?.addEventListener("click", () => { f(); });

  /**
   * Sends a request; a refusal shows where the person looks.
   * @param {Msg} m
   * @param {HTMLElement} [errEl]
   */
  async function ask(m, errEl) {
    try {
      const ok = await /** @type {Signal} */ (signal).request(m);
      if (errEl) say(errEl, "");
      return ok;
    } catch (e) {
      if (errEl) say(errEl, reason(e));
      else fail(reason(e));
      return null;
    }
  }

  const toggleMic = () => setMic(!S.on.mic, true);
  const toggleCamera = () => setCamera(!S.on.camera, true);
  const toggleHand = () => ask({ type: "hand", raised: !S.you?.hand });
  onClick("btn-mic", toggleMic);
  onClick("btn-camera", toggleCamera);
  onClick("btn-screen", () => setScreen(!S.on.screen));
  onClick("btn-hand", toggleHand);
  onClick("btn-reactions", () => openPanel("reactions"));
  onClick("btn-chat", () => openPanel("chat"));
  onClick("btn-people", () => openPanel("people"));
  onClick("btn-polls", () => openPanel("polls"));
  onClick("btn-breakouts", () => openPanel("breakouts"));
  onClick("btn-help", () => /** @type {HTMLDialogElement} */ (byId("help")).showModal());
  onClick("btn-leave", async () => {
    await signal?.leave();
    leaveRoom("You left the class.", true);
  });
  byId("reactions").addEventListener("click", (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-emoji]") : null;
    if (b instanceof HTMLElement) ask({ type: "react", emoji: b.dataset.emoji ?? "" });
  });
  onClick("page-prev", () => { S.page--; render(); });
  onClick("page-next", () => { S.page++; render(); });

  const panels = /** @type {Record<string, [string, string]>} */ ({
    reactions: ["btn-reactions", "reactions"],
    chat: ["btn-chat", "chat-panel"],
    people: ["btn-people", "people-panel"],
    polls: ["btn-polls", "polls-panel"],
    breakouts: ["btn-breakouts", "breakouts-panel"],
  });

  /**
   * Toggles a panel (or opens it with open set).
   * @param {string} name
   * @param {boolean} [open]
   */
  function openPanel(name, open) {
    const [btnID, panelID] = panels[name];
    const btn = maybe(btnID), panel = maybe(panelID);
    if (!btn || !panel) return;
    const show = open ?? panel.hidden;
    panel.hidden = !show;
    btn.setAttribute("aria-expanded", String(show));
    if (name === "chat" && show) {
      btn.classList.remove("unread");
      byId("chat-text").focus();
    }
    render();
  }

  document.addEventListener("keydown", (ev) => {
    if (!S.joined || S.over || ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    if (/** @type {HTMLDialogElement} */ (byId("help")).open) return;
    const k = ev.key.toLowerCase();
    /** @type {Record<string, () => unknown>} */
    const keys = {
      m: toggleMic, v: toggleCamera, h: toggleHand,
      c: () => openPanel("chat"), p: () => openPanel("people"),
      "?": () => /** @type {HTMLDialogElement} */ (byId("help")).showModal(),
    };
    const f = keys[k];
    if (!f) return;
    ev.preventDefault();
    f();
  });

  // Chat.
  const chatText = /** @type {HTMLInputElement} */ (byId("chat-text"));
  const chatTo = /** @type {HTMLSelectElement} */ (byId("chat-to"));
  byId("chat-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = chatText.value.trim();
    if (!text) return;
    const ok = await ask({ type: "chat", to: chatTo.value, text }, byId("chat-error"));
    if (ok) chatText.value = "";
  });

  /**
   * @param {ChatMessage} c
   * @param {string} [label]
   */
  function addChat(c, label) {
    const log = byId("chat-log");
    const mine = c.from === S.you?.id;
    let to = "";
    if (label) to = label;
    else if (c.to === "hosts") to = "to the hosts, privately";
    else if (c.to !== "everyone") to = c.to === S.you?.id ? "to you, privately" : `to ${nameOf(c.to)}, privately`;
    const when = new Date(c.sentAt);
    log.append(h("li", { class: `chat-msg${c.to !== "everyone" ? " private" : ""}${mine ? " mine" : ""}` }, [
      h("span", { class: "from", text: mine ? "You" : c.fromName || nameOf(c.from) }),
      to ? h("span", { class: "to", text: ` (${to})` }) : null,
      h("time", { datetime: c.sentAt, text: ` ${when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` }),
      h("p", { class: "text", text: c.text }),
    ]));
    log.scrollTop = log.scrollHeight;
  }

  // Host controls.
  if (host) {
    onClick("btn-mute-all", () => ask({ type: "muteAll" }));
    byId("lock-mics").addEventListener("change", (ev) => ask({ type: "lockMics", locked: /** @type {HTMLInputElement} */ (ev.target).checked }));
    byId("lock-room").addEventListener("change", (ev) => ask({ type: "lock", locked: /** @type {HTMLInputElement} */ (ev.target).checked }));
    onClick("btn-end", () => {
      byId("btn-end-confirm").hidden = false;
      byId("btn-end-confirm").focus();
    });
    onClick("btn-end-confirm", () => ask({ type: "end" }));
    onClick("btn-lower-all", () => ask({ type: "lowerAllHands" }));
    const bErr = byId("breakouts-error");
    /**
     * @param {string} id
     * @param {() => Msg} msg
     */
    const form = (id, msg) => byId(id).addEventListener("submit", (ev) => {
      ev.preventDefault();
      ask(msg(), bErr);
    });
    const num = (/** @type {string} */ id) => Number(/** @type {HTMLInputElement} */ (byId(id)).value);
    const val = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (byId(id)).value;
    form("breakouts-create", () => ({ type: "breakouts.create", count: num("breakout-count") }));
    form("breakouts-auto", () => ({ type: "breakouts.auto", mode: val("breakout-mode") }));
    form("breakouts-timer", () => ({ type: "breakouts.timer", seconds: Math.round(num("breakout-minutes") * 60) }));
    form("breakouts-broadcast", () => ({ type: "breakouts.broadcast", text: val("breakout-message") }));
    form("breakouts-visit", () => ({ type: "breakouts.visit", group: val("breakout-visit") }));
    onClick("btn-breakouts-close", () => ask({ type: "breakouts.close" }, bErr));
    byId("assign-list").addEventListener("change", (ev) => {
      const sel = ev.target;
      if (sel instanceof HTMLSelectElement && sel.dataset.participant) {
        ask({ type: "breakouts.assign", assignments: { [sel.dataset.participant]: sel.value } }, bErr);
      }
    });
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
      const ok = await ask({ type: "poll.create", question: q.value, options, multiple: /** @type {HTMLInputElement} */ (byId("poll-multiple")).checked }, err);
      if (ok) {
        q.value = "";
        o.value = "";
      }
    });
  }
  // Per-person host actions and votes are buttons made by render.
  byId("people-panel").addEventListener("click", (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-action]") : null;
    if (!(b instanceof HTMLElement)) return;
    const p = b.dataset.participant ?? "";
    ask({ type: /** @type {string} */ (b.dataset.action), participant: p });
  });
  byId("poll-list").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    if (!(f instanceof HTMLFormElement)) return;
    const choices = [...f.querySelectorAll("input:checked")].map((i) => Number(/** @type {HTMLInputElement} */ (i).value));
    if (choices.length === 0) return;
    ask({ type: "poll.vote", poll: f.dataset.poll ?? "", choices });
  });
  byId("poll-list").addEventListener("click", (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-close-poll]") : null;
    if (b instanceof HTMLElement) ask({ type: "poll.close", poll: b.dataset.closePoll ?? "" });
  });
  byId("grid").addEventListener("click", (ev) => {
    const b = ev.target instanceof HTMLElement ? ev.target.closest("button[data-pin]") : null;
    if (!(b instanceof HTMLElement)) return;
    const id = b.dataset.pin ?? "";
    S.pinned = S.pinned === id ? "" : id;
    render();
  });

  // ---------------------------------------------------------------- rendering

  /** @param {string} id */
  function nameOf(id) {
    return S.people.get(id)?.name ?? "Someone";
  }

  /** @param {string} g */
  function groupName(g) {
    return g ? `breakout room ${g.replace(/^b/, "")}` : "the main room";
  }

  /** The participants in this page's group, pinned first. */
  function roommates() {
    const g = S.you?.group ?? "";
    const all = [...S.people.values()].filter((p) => p.group === g);
    all.sort((a, b) => (a.id === S.pinned ? -1 : b.id === S.pinned ? 1 : 0));
    return all;
  }

  /** @type {Map<string, HTMLLIElement>} */
  const tiles = new Map();
  let lastSubscribe = "";
  /** @type {Map<string, HTMLAudioElement>} */
  const players = new Map();

  function render() {
    if (!S.joined || S.over || !S.you) return;
    renderControls();
    renderGrid();
    renderScreen();
    renderAudio();
    renderPeople();
    renderChatTargets();
    renderBreakouts();
    renderPolls();
    subscribe();
  }

  function renderControls() {
    byId("btn-mic").textContent = S.on.mic ? "Mute" : "Unmute";
    byId("btn-camera").textContent = S.on.camera ? "Stop video" : "Start video";
    byId("btn-screen").textContent = S.on.screen ? "Stop sharing" : "Share screen";
    byId("btn-hand").textContent = S.you?.hand ? "Lower hand" : "Raise hand";
    if (host) {
      /** @type {HTMLInputElement} */ (byId("lock-mics")).checked = S.micsLocked;
      /** @type {HTMLInputElement} */ (byId("lock-room")).checked = S.locked;
    }
  }

  function renderGrid() {
    const grid = byId("grid");
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
    grid.dataset.count = String(Math.min(shown.length, 9));
    const keep = new Set(shown.map((p) => p.id));
    for (const [id, el] of tiles) {
      if (!keep.has(id)) {
        el.remove();
        tiles.delete(id);
      }
    }
    shown.forEach((p, i) => {
      let el = tiles.get(p.id);
      if (!el) {
        el = newTile(p.id);
        tiles.set(p.id, el);
      }
      if (grid.children[i] !== el) grid.insertBefore(el, grid.children[i] ?? null);
      updateTile(el, p);
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

  /** @param {string} id */
  function received(id) {
    return media?.received(id) ?? null;
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
    if (!signal || !media) return;
    const dpr = window.devicePixelRatio || 1;
    /** @type {{track: string, width: number, height: number}[]} */
    const video = [];
    const screen = sharer();
    if (screen && screen.id !== S.you?.id) {
      const r = byId("screen-view").getBoundingClientRect();
      video.push({ track: `${screen.id}/screen`, width: Math.round(r.width * dpr), height: Math.round(r.height * dpr) });
    }
    for (const [id, el] of tiles) {
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

  function renderPeople() {
    const list = byId("people-list");
    if (byId("people-panel").hidden) return;
    // Rebuilt only when what it shows changed, so that a button is not
    // swapped for a copy under the pointer.
    if (!changed(list, [[...S.people.values()], S.on, S.hands, [...qualities]])) return;
    list.replaceChildren(...[...S.people.values()].map((p) => {
      const me = p.id === S.you?.id;
      const media = me ? S.on : p.media;
      const states = [
        media.mic ? "microphone on" : "muted",
        media.camera ? "camera on" : "camera off",
        media.screen ? "sharing screen" : "",
        p.hand ? "hand raised" : "",
        p.group ? groupName(p.group) : "",
        qualityWord(qualities.get(p.id)),
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
        h("span", { class: "name", text: nameOf(id) }), " ",
        h("button", { type: "button", class: "secondary small", "data-action": "lowerHand", "data-participant": id, text: `Lower hand of ${nameOf(id)}` }),
      ])));
      byId("hands-empty").hidden = S.hands.length > 0;
      byId("btn-lower-all").hidden = S.hands.length < 2;
    }
  }

  /**
   * Reports whether what el shows (data) differs from its last rendering.
   * @param {HTMLElement} el
   * @param {unknown} data
   */
  function changed(el, data) {
    const sig = JSON.stringify(data);
    if (el.dataset.sig === sig) return false;
    el.dataset.sig = sig;
    return true;
  }

  /** @param {number | undefined} level */
  function qualityWord(level) {
    if (level === undefined || level === 3) return "";
    return ["connection lost", "poor connection", "fair connection"][level] ?? "";
  }

  function renderChatTargets() {
    const chosen = chatTo.value;
    const opts = [h("option", { value: "everyone", text: S.you?.group ? `Everyone in ${groupName(S.you.group)}` : "Everyone" })];
    if (host) {
      for (const p of S.people.values()) {
        if (p.id !== S.you?.id) opts.push(h("option", { value: p.id, text: `${p.name}, privately` }));
      }
    } else {
      opts.push(h("option", { value: "hosts", text: "Hosts only (private)" }));
    }
    const sig = opts.map((o) => o.value + o.textContent).join("|");
    if (chatTo.dataset.sig === sig) return;
    chatTo.dataset.sig = sig;
    chatTo.replaceChildren(...opts);
    chatTo.value = opts.some((o) => o.value === chosen) ? chosen : "everyone";
  }

  function renderBreakouts() {
    const b = S.breakouts;
    const banner = byId("breakout-banner");
    say(banner, b.you ? `You are in ${groupName(b.you)}.` : "");
    tickTimer();
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

  function renderPolls() {
    const list = byId("poll-list");
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

  function showQuality() {
    const el = byId("quality");
    const level = Math.min(S.quality.server, S.quality.local);
    el.dataset.level = String(level);
    el.textContent = `Connection: ${["lost", "poor", "fair", "good"][level] ?? "good"}`;
  }

  /** @param {string} name */
  function initials(name) {
    return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
  }

  // ---------------------------------------------------------------- timers

  /** @type {number[]} */
  let timers = [];
  let lastLost = 0, lastReceived = 0;

  function startTimers() {
    timers.push(window.setInterval(tickTimer, 1000));
    // The indicator's local half: loss and round trip on what we receive.
    timers.push(window.setInterval(async () => {
      if (!media) return;
      try {
        const { rtt, lost, received } = await media.health();
        const dl = lost - lastLost, dr = received - lastReceived;
        lastLost = lost;
        lastReceived = received;
        const loss = dl + dr > 0 ? dl / (dl + dr) : 0;
        const state = media.sub.connectionState;
        S.quality.local = state === "failed" || state === "disconnected" ? 0
          : loss > 0.1 || rtt > 1 ? 1 : loss > 0.03 || rtt > 0.4 ? 2 : 3;
        showQuality();
      } catch {
        // Stats of a closed connection: the next tick has a new one.
      }
    }, 2000));
    // Tiles change size with the window: ask for the layers that fit.
    window.addEventListener("resize", () => subscribe());
  }

  function stopTimers() {
    for (const t of timers) clearInterval(t);
    timers = [];
  }

  function tickTimer() {
    const el = byId("breakout-timer");
    const ends = S.breakouts.timerEndsAt ? Date.parse(S.breakouts.timerEndsAt) : NaN;
    if (Number.isNaN(ends) || S.breakouts.groups.length === 0) {
      say(el, "");
      return;
    }
    say(el, `Breakout rooms close in ${clock(ends - (Date.now() + skew))}`);
  }
}

/** @param {MediaStreamTrack | null} t */
function stopTrack(t) {
  t?.stop();
}

/** @param {string} s */
function sentence(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}
