// @ts-check
// WHIP (RFC 9725) and WHEP for the broadcast pages: one client-offered
// peer connection, the offer POSTed as application/sdp with the join token
// as Bearer, the answer (with all the server's candidates) in the 201
// reply, DELETE on the Location to stop. The server takes no trickled
// candidates, so the offer goes out once this side has gathered its own.

/** The presenter's simulcast layers: quarter, half and full resolution. */
export const SIMULCAST = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/** How long to wait for ICE gathering before sending what there is. */
const GATHER_MS = 2000;

/**
 * An error answered by a WHIP or WHEP endpoint.
 */
export class HTTPError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {any} body the parsed JSON body, if any
   */
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * Resolves when pc has gathered its candidates, or after GATHER_MS.
 * @param {RTCPeerConnection} pc
 */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve(undefined);
    };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, GATHER_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * Reads an error reply: the server's JSON {"error":{"code","message"}}.
 * @param {Response} res
 * @returns {Promise<HTTPError>}
 */
async function failure(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const e = body && body.error ? body.error : {};
  return new HTTPError(res.status, e.code || String(res.status), e.message || res.statusText || "the server refused", body);
}

/**
 * Offers pc to endpoint and applies the answer.
 * @param {RTCPeerConnection} pc
 * @param {string} endpoint
 * @param {string} token
 * @returns {Promise<string>} the session's resource URL (Location)
 */
async function exchange(pc, endpoint, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const res = await fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    body: pc.localDescription?.sdp ?? "",
  });
  if (res.status !== 201) throw await failure(res);
  const answer = await res.text();
  const location = new URL(res.headers.get("Location") || endpoint, new URL(endpoint, window.location.href)).href;
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  return location;
}

/**
 * Puts codecs of mime type first on a transceiver, when the browser lets
 * a page choose (the broadcast's HLS transcodes VP8; H.264 from a browser
 * is not what the server expects of it).
 * @param {RTCRtpTransceiver} t
 * @param {"video" | "audio"} kind
 * @param {string} mime
 */
function prefer(t, kind, mime) {
  const caps = RTCRtpSender.getCapabilities?.(kind);
  if (!caps || !t.setCodecPreferences) return;
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === mime);
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== mime);
  if (first.length) t.setCodecPreferences([...first, ...rest]);
}

/**
 * A WHIP or WHEP session: the peer connection and the resource the server
 * made for it. Both protocols end a session alike.
 */
class Session {
  /**
   * @param {RTCPeerConnection} pc
   * @param {string} resource
   * @param {string} token
   */
  constructor(pc, resource, token) {
    this.pc = pc;
    this.resource = resource;
    this.token = token;
  }

  /** Ends the session: close, then DELETE on the resource. */
  async stop() {
    this.pc.close();
    try {
      await fetch(this.resource, { method: "DELETE", headers: { Authorization: `Bearer ${this.token}` } });
    } catch {
      // The server notices the closed connection by itself; DELETE only
      // tells it sooner.
    }
  }
}

/** A stream sent over WHIP. */
export class Publish extends Session {
  /**
   * What the page sends now: bitrate (bits/s) and frame rate of the top
   * layer sent, frames the camera gave that were never encoded, and the
   * number of layers going out.
   * @param {{bytes: number, at: number, rids?: Record<string, number>}} last the previous reading, updated
   * @returns {Promise<{bitrate: number, fps: number, dropped: number, lost: number, layers: number}>}
   */
  async health(last) {
    const stats = await this.pc.getStats();
    let bytes = 0, fps = 0, encoded = 0, captured = 0, layers = 0, lost = 0;
    /** @type {Record<string, number>} */
    const rids = {};
    stats.forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video") {
        bytes += s.bytesSent ?? 0;
        // A layer counts while it sends: the browser leaves some out when
        // the uplink or the processor cannot carry them.
        const key = String(s.rid ?? s.ssrc);
        rids[key] = s.bytesSent ?? 0;
        if (rids[key] > (last.rids?.[key] ?? 0)) layers++;
        if ((s.framesPerSecond ?? 0) > fps) fps = s.framesPerSecond;
        encoded = Math.max(encoded, s.framesEncoded ?? 0);
      }
      if (s.type === "outbound-rtp" && s.kind === "audio") bytes += s.bytesSent ?? 0;
      if (s.type === "media-source" && s.kind === "video") captured = s.frames ?? captured;
      if (s.type === "remote-inbound-rtp") lost += Math.max(0, s.packetsLost ?? 0);
    });
    const now = performance.now();
    const bitrate = last.at ? ((bytes - last.bytes) * 8 * 1000) / (now - last.at) : 0;
    last.bytes = bytes;
    last.rids = rids;
    last.at = now;
    return { bitrate: Math.max(0, bitrate), fps, dropped: Math.max(0, captured - encoded), lost, layers };
  }
}

/**
 * Publishes video (with simulcast) and audio over WHIP.
 * @param {string} endpoint the WHIP URL
 * @param {string} token the host join token
 * @param {MediaStreamTrack | null} video
 * @param {MediaStreamTrack | null} audio
 * @returns {Promise<Publish>}
 */
export async function publish(endpoint, token, video, audio) {
  const pc = new RTCPeerConnection();
  try {
    const stream = new MediaStream();
    const v = pc.addTransceiver(video ?? "video", {
      direction: "sendonly", streams: [stream], sendEncodings: SIMULCAST.map((e) => ({ ...e })),
    });
    prefer(v, "video", "video/vp8");
    const a = pc.addTransceiver(audio ?? "audio", { direction: "sendonly", streams: [stream] });
    prefer(a, "audio", "audio/opus");
    const resource = await exchange(pc, endpoint, token);
    return new Publish(pc, resource, token);
  } catch (e) {
    pc.close();
    throw e;
  }
}

/** A WHEP playback session; stop ends playback. */
export class View extends Session {
  /**
   * @param {RTCPeerConnection} pc
   * @param {string} resource
   * @param {string} token
   * @param {MediaStream} stream
   */
  constructor(pc, resource, token, stream) {
    super(pc, resource, token);
    this.stream = stream;
  }

  /**
   * Frames decoded so far, and the delay from the sender's camera to this
   * screen as far as WebRTC can tell: the jitter buffer's average delay
   * plus half the round trip.
   * @returns {Promise<{decoded: number, latency: number, bytes: number}>}
   */
  async stats() {
    const stats = await this.pc.getStats();
    let decoded = 0, jitter = 0, rtt = 0, bytes = 0;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        decoded = s.framesDecoded ?? 0;
        bytes += s.bytesReceived ?? 0;
        if (s.jitterBufferEmittedCount > 0) jitter = s.jitterBufferDelay / s.jitterBufferEmittedCount;
      }
      if (s.type === "candidate-pair" && s.nominated && typeof s.currentRoundTripTime === "number") rtt = s.currentRoundTripTime;
    });
    return { decoded, latency: jitter + rtt / 2, bytes };
  }
}

/**
 * Starts WHEP playback: one audio and one video transceiver, receive only.
 * A 503 FULL rejects with an HTTPError whose body carries the HLS URL.
 * @param {string} endpoint the WHEP URL
 * @param {string} token the viewer's join token
 * @returns {Promise<View>}
 */
export async function view(endpoint, token) {
  const pc = new RTCPeerConnection();
  const stream = new MediaStream();
  pc.ontrack = (ev) => {
    // The server may replace the publisher's tracks on the same
    // transceivers; one stream per kind keeps the player attached.
    for (const t of stream.getTracks()) if (t.kind === ev.track.kind && t !== ev.track) stream.removeTrack(t);
    if (!stream.getTracks().includes(ev.track)) stream.addTrack(ev.track);
  };
  try {
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const resource = await exchange(pc, endpoint, token);
    return new View(pc, resource, token, stream);
  } catch (e) {
    pc.close();
    throw e;
  }
}
