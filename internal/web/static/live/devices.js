// @ts-check
// The device check before joining: camera and microphone pickers, the
// preview, the microphone level meter and the capture size; and asking
// for a device again later (unmuting, starting the video), with the same
// clear words when the browser refuses. The presenter page of a broadcast
// class picks its devices with the same helpers (stopTrack, failure,
// listMediaDevices, fillPicker), in its own words.

import { byId, h, sentence } from "./dom.js";

/** @typedef {import("./state.js").App} App */

/** @param {MediaStreamTrack | null} t */
export function stopTrack(t) {
  t?.stop();
}

/**
 * The kind of a getUserMedia failure that has its own advice.
 * @param {any} e
 * @returns {"blocked" | "missing" | "busy" | ""}
 */
export function failure(e) {
  switch (e && e.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "blocked";
    case "NotFoundError":
    case "OverconstrainedError":
      return "missing";
    case "NotReadableError":
      return "busy";
  }
  return "";
}

/**
 * What a person is told when devices cannot be had: denied permission
 * comes with what to do about it. Both devices failing alike make one
 * sentence, not the same advice twice.
 * @param {("camera" | "mic")[]} kinds
 * @param {any} e
 */
export function deviceProblem(kinds, e) {
  const both = kinds.length > 1;
  const what = both ? "camera and microphone" : kinds[0] === "camera" ? "camera" : "microphone";
  const it = both ? "them" : "it";
  switch (failure(e)) {
    case "blocked":
      return `Access to your ${what} is blocked. Allow ${it} in your browser's site settings and reload the page; you can still join without ${it}.`;
    case "missing":
      return `No ${both ? "camera or microphone" : what} was found. You can still join without ${it}.`;
    case "busy":
      return `Your ${what} ${both ? "are" : "is"} in use by another program. Close it and reload the page.`;
  }
  return `Your ${what} could not be started (${e && e.message ? e.message : "unknown error"}).`;
}

/**
 * The cameras and microphones the browser lists; null when it will not
 * list them, and the pickers are best left as they are.
 * @returns {Promise<MediaDeviceInfo[] | null>}
 */
export async function listMediaDevices() {
  try {
    return await navigator.mediaDevices.enumerateDevices();
  } catch {
    return null;
  }
}

/**
 * Fills a device picker from the listed devices, keeping it on the device
 * in use (or the one chosen before). Devices without labels (no
 * permission yet) are numbered instead.
 * @param {HTMLSelectElement} sel
 * @param {MediaDeviceInfo[]} found
 * @param {MediaDeviceKind} kind
 * @param {MediaStreamTrack | null} current
 * @param {string} noun
 */
export function fillPicker(sel, found, kind, current, noun) {
  const chosen = current?.getSettings().deviceId ?? sel.value;
  sel.replaceChildren(h("option", { value: "", text: `Default ${noun}` }));
  let n = 0;
  for (const d of found) {
    if (d.kind !== kind || !d.deviceId) continue;
    n++;
    sel.append(h("option", { value: d.deviceId, text: d.label || `${sentence(noun)} ${n}`, selected: d.deviceId === chosen }));
  }
}

/**
 * Runs the device check until join is clicked.
 * @param {App} app
 * @param {() => void} onJoin the person clicked Join
 */
export function devices(app, onJoin) {
  const { S } = app;
  const preview = /** @type {HTMLVideoElement} */ (byId("preview"));
  const cameraSelect = /** @type {HTMLSelectElement} */ (byId("camera-select"));
  const micSelect = /** @type {HTMLSelectElement} */ (byId("mic-select"));
  const qualitySelect = /** @type {HTMLSelectElement} */ (byId("quality-select"));
  const meter = /** @type {HTMLMeterElement} */ (byId("mic-level"));
  const joinButton = /** @type {HTMLButtonElement} */ (byId("join-button"));
  /** @type {AudioContext | null} */
  let audioCtx = null;
  let metering = 0;

  /**
   * The camera's capture size: the top simulcast layer. A slow uplink or
   * machine is better served by a smaller one than by dropped frames.
   */
  const video = () => {
    const deviceId = cameraSelect.value;
    const height = Number(qualitySelect.value) || 720;
    return {
      width: { ideal: Math.round(height * 16 / 9) }, height: { ideal: height },
      frameRate: { ideal: height > 360 ? 24 : 15, max: 30 },
      ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
    };
  };
  const audio = () => {
    const deviceId = micSelect.value;
    return {
      echoCancellation: true, noiseSuppression: true, autoGainControl: true,
      ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
    };
  };

  /** Asks for the chosen camera and microphone, and shows them. */
  async function acquire() {
    stopTrack(S.local.camera);
    stopTrack(S.local.mic);
    S.local.camera = S.local.mic = null;
    /** @type {{kind: "camera" | "mic", e: any}[]} */
    const failed = [];
    for (const kind of /** @type {const} */ (["camera", "mic"])) {
      try {
        const s = await navigator.mediaDevices.getUserMedia(kind === "camera" ? { video: video() } : { audio: audio() });
        S.local[kind] = s.getTracks()[0] ?? null;
      } catch (e) {
        failed.push({ kind, e });
      }
    }
    const alike = failed.length === 2 && failure(failed[0].e) !== "" && failure(failed[0].e) === failure(failed[1].e);
    app.fail(alike
      ? deviceProblem(["camera", "mic"], failed[0].e)
      : failed.map((f) => deviceProblem([f.kind], f.e)).join(" "));
    preview.srcObject = S.local.camera ? new MediaStream([S.local.camera]) : null;
    meterOn();
    await listDevices();
  }

  async function listDevices() {
    const found = await listMediaDevices();
    if (!found) return;
    fillPicker(cameraSelect, found, "videoinput", S.local.camera, "camera");
    fillPicker(micSelect, found, "audioinput", S.local.mic, "microphone");
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

  /**
   * Asks for one device again (the microphone to unmute, the camera to
   * start the video); a refusal is shown and yields null.
   * @param {"camera" | "mic"} kind
   * @returns {Promise<MediaStreamTrack | null>}
   */
  async function open(kind) {
    try {
      const s = await navigator.mediaDevices.getUserMedia(kind === "camera" ? { video: video() } : { audio: audio() });
      return (kind === "camera" ? s.getVideoTracks() : s.getAudioTracks())[0] ?? null;
    } catch (e) {
      app.fail(deviceProblem([kind], e));
      return null;
    }
  }

  cameraSelect.addEventListener("change", () => { acquire(); });
  micSelect.addEventListener("change", () => { acquire(); });
  qualitySelect.addEventListener("change", () => { acquire(); });
  joinButton.addEventListener("click", () => {
    joinButton.disabled = true;
    onJoin();
  });
  if (navigator.mediaDevices?.getUserMedia) {
    acquire();
  } else {
    app.fail("This browser cannot use a camera or microphone here (the page must be served over HTTPS).");
  }

  return {
    open,
    /** Ends the device check: the meter stops, the preview goes blank. */
    done() {
      meterOff();
      preview.srcObject = null;
    },
    meterOff,
    /** Whether the person chose to join muted. */
    joinMuted: () => /** @type {HTMLInputElement} */ (byId("join-muted")).checked,
    /** Whether the person chose to join with the camera off. */
    joinCameraOff: () => /** @type {HTMLInputElement} */ (byId("join-camera-off")).checked,
  };
}
