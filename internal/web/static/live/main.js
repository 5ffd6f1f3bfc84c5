// @ts-check
// The live classroom page: the device check before joining, then the room
// itself. The server renders the shell and the join pass; this module
// speaks the signalling protocol (signal.js), carries the media
// (media.js), keeps the room's state (state.js) and hands each message to
// the part of the page it concerns: the device check (devices.js), what
// this page sends (local.js), the stage (grid.js), the control bar
// (controls.js), chat (chat.js), participants and host controls
// (people.js), breakout rooms (breakouts.js) and polls (polls.js).

import { Signal } from "./signal.js";
import { Media } from "./media.js";
import { byId, maybe, say, reason } from "./dom.js";
import { newState, nameOf, groupName } from "./state.js";
import { devices } from "./devices.js";
import { local } from "./local.js";
import { grid } from "./grid.js";
import { controls } from "./controls.js";
import { chat } from "./chat.js";
import { people } from "./people.js";
import { breakouts } from "./breakouts.js";
import { polls } from "./polls.js";

/**
 * @typedef {import("./state.js").Msg} Msg
 * @typedef {import("./state.js").App} App
 * @typedef {import("./state.js").Participant} Participant
 * @typedef {import("./state.js").Poll} Poll
 * @typedef {import("./state.js").Results} Results
 */

/** How long a reaction stays on a tile. */
const REACTION_MS = 4000;

const root = maybe("live");
if (root && root.dataset.service !== "IVS") main(root);

/** @param {HTMLElement} root */
function main(root) {
  const host = root.hasAttribute("data-host");
  const alertEl = byId("live-alert");
  const statusEl = byId("live-status");
  const S = newState();

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

  /** @type {App} */
  const app = {
    S, host,
    media: () => media,
    signal: () => signal,
    fail: (text) => say(alertEl, text),
    notice: (text) => say(statusEl, text),
    ask, render,
    openPanel: () => {}, // the control bar's, once it is made
  };
  const dev = devices(app, join);
  const own = local(app, dev.open);
  const stage = grid(app);
  const bar = controls(app, {
    own,
    leave: async () => {
      await signal?.leave();
      leaveRoom("You left the class.", true);
    },
  });
  app.openPanel = bar.openPanel;
  const talk = chat(app);
  const list = people(app);
  const rooms = breakouts(app);
  const votes = polls(app);

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
      else app.fail(reason(e));
      return null;
    }
  }

  function join() {
    app.notice("Joining…");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    signal = new Signal({
      url: `${proto}//${location.host}${root.dataset.signal}`,
      token: root.dataset.token ?? "",
      classID: root.dataset.class ?? "",
      muted: () => !(S.joined ? S.on.mic : !dev.joinMuted() && !!S.local.mic),
      onJoined: (m) => { inbox = inbox.then(() => joined(m)).catch(report); },
      onMessage: (m) => { inbox = inbox.then(() => handle(m)).catch(report); },
      onClosed: closed,
      onDropped: (n) => {
        S.quality.server = 0;
        showQuality();
        app.fail(n === 1 ? "The connection dropped. Reconnecting…" : `The connection dropped. Reconnecting (attempt ${n})…`);
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
    stage.resubscribe();
    S.quality = { server: 3, local: 3 };
    lastLost = lastReceived = 0;
    showQuality();
    if (first) {
      S.joined = true;
      dev.done();
      byId("prejoin").hidden = true;
      byId("room").hidden = false;
      S.on.camera = !!S.local.camera && !dev.joinCameraOff();
      if (!S.on.camera) own.stopCamera();
      talk.clear();
      for (const c of st.chat) talk.add(c);
      app.notice("You are in the classroom.");
      app.fail("");
      startTimers();
    } else {
      app.fail("");
      app.notice("Reconnected.");
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
      .catch((e) => app.fail(`Could not send your camera and microphone: ${reason(e)}`));
    own.sendMedia();
    render();
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
        talk.add(m);
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
        S.qualities.set(m.participant, m.level);
        break;
      case "breakouts": {
        const before = S.breakouts.you;
        S.breakouts = m;
        if (before !== m.you) app.notice(m.you ? `You are now in ${groupName(m.you)}.` : "You are back in the main room.");
        break;
      }
      case "breakouts.broadcast":
        app.notice(`Message to every room: ${m.text}`);
        talk.add({ id: "", from: m.from, fromName: nameOf(S, m.from), to: "everyone", group: "", text: m.text, sentAt: new Date().toISOString() }, "To every room");
        return;
      case "poll":
        S.polls.set(m.poll.id, m.poll);
        if (!m.poll.closed && !host) app.openPanel("polls", true);
        break;
      case "poll.results":
        S.results.set(m.poll, m);
        break;
      case "muted":
        await own.setMic(false, false);
        app.notice(`${nameOf(S, m.by)} muted your microphone.${S.micsLocked && !host ? "" : " You can unmute yourself."}`);
        break;
      case "videoStopped":
        await own.setCamera(false, false);
        app.notice(`${nameOf(S, m.by)} stopped your video.`);
        break;
      case "locked":
        S.locked = m.room;
        S.micsLocked = m.mics;
        if (!host) app.notice(m.mics ? "A host has locked microphones." : "");
        break;
      case "removed":
        leaveRoom(`${nameOf(S, m.by)} removed you from the class. You cannot join again with this pass.`, false);
        return;
      case "ended":
        leaveRoom("The class has ended. Thank you for taking part.", false);
        return;
      case "replaced":
        leaveRoom("You joined this class from another tab or device, so this page left the room.", true);
        return;
      case "error":
        app.fail(reason(m));
        return;
      default:
        return;
    }
    render();
  }

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
    dev.meterOff();
    own.stopAll();
    byId("prejoin").hidden = true;
    byId("room").hidden = true;
    say(alertEl, "");
    say(statusEl, "");
    byId("left-reason").textContent = why;
    byId("rejoin").hidden = !mayRejoin;
    byId("left").hidden = false;
    stopTimers();
  }

  function render() {
    if (!S.joined || S.over || !S.you) return;
    bar.render();
    stage.render();
    list.render();
    talk.renderTargets();
    rooms.render();
    votes.render();
    stage.subscribe();
  }

  function showQuality() {
    const el = byId("quality");
    const level = Math.min(S.quality.server, S.quality.local);
    el.dataset.level = String(level);
    el.textContent = `Connection: ${["lost", "poor", "fair", "good"][level] ?? "good"}`;
  }

  /** @type {number[]} */
  let timers = [];
  let lastLost = 0, lastReceived = 0;

  function startTimers() {
    timers.push(window.setInterval(rooms.tick, 1000));
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
    window.addEventListener("resize", () => stage.subscribe());
  }

  function stopTimers() {
    for (const t of timers) clearInterval(t);
    timers = [];
  }
}
