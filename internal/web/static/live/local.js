// @ts-check
// What this page sends: the microphone, the camera and the screen, each
// turned on or off here or by a host, and the room told of every change.

import { reason } from "./dom.js";
import { stopTrack } from "./devices.js";

/** @typedef {import("./state.js").App} App */

/**
 * @param {App} app
 * @param {(kind: "camera" | "mic") => Promise<MediaStreamTrack | null>} open asks for a device again
 */
export function local(app, open) {
  const { S, host } = app;

  /**
   * Tells the room what this page sends.
   * @returns {Promise<boolean>} whether the room took it
   */
  async function sendMedia() {
    const signal = app.signal();
    if (!signal) return false;
    try {
      await signal.request({ type: "media", mic: S.on.mic, camera: S.on.camera, screen: S.on.screen });
      return true;
    } catch (e) {
      app.fail(reason(e));
      return false;
    }
  }

  /**
   * @param {boolean} on
   * @param {boolean} tell tell the room (false when the room told us)
   */
  async function setMic(on, tell) {
    if (on && !host && S.micsLocked) {
      app.fail("A host has locked microphones: you cannot unmute now.");
      return;
    }
    // A microphone unplugged or revoked ends its track: ask anew.
    if (on && (!S.local.mic || S.local.mic.readyState === "ended")) {
      const t = await open("mic");
      if (!t) return;
      S.local.mic = t;
    }
    S.on.mic = on;
    await app.media()?.setTrack("mic", on ? S.local.mic : null);
    if (tell && !(await sendMedia()) && on) {
      // Refused (microphones locked meanwhile): stay muted.
      S.on.mic = false;
      await app.media()?.setTrack("mic", null);
    }
    app.render();
  }

  /**
   * @param {boolean} on
   * @param {boolean} tell
   */
  async function setCamera(on, tell) {
    if (on && (!S.local.camera || S.local.camera.readyState === "ended")) {
      const t = await open("camera");
      if (!t) return;
      S.local.camera = t;
    }
    S.on.camera = on;
    await app.media()?.setTrack("camera", on ? S.local.camera : null);
    // Off means off: the camera's light goes out too.
    if (!on) stopCamera();
    if (tell) await sendMedia();
    app.render();
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
        app.fail(name === "NotAllowedError" ? "Screen sharing was not allowed." : `Your screen could not be shared: ${reason(e)}`);
        return;
      }
      S.local.screen.addEventListener("ended", () => { if (S.on.screen) setScreen(false); });
    }
    S.on.screen = on;
    try {
      await app.media()?.setTrack("screen", on ? S.local.screen : null);
    } catch (e) {
      app.fail(`Your screen could not be shared: ${reason(e)}`);
    }
    if (!on) {
      stopTrack(S.local.screen);
      S.local.screen = null;
    }
    await sendMedia();
    app.render();
  }

  /** Stops every device: the page leaves the room. */
  function stopAll() {
    for (const k of /** @type {const} */ (["camera", "mic", "screen"])) stopTrack(S.local[k]);
  }

  return { sendMedia, setMic, setCamera, setScreen, stopCamera, stopAll };
}
