// @ts-check
// The two peer connections of a participant (docs/protocol.md): on "pub"
// this page offers its camera (three simulcast layers), microphone and
// screen; on "sub" the server offers a pool of transceivers it reuses as
// tiles change, and a "mapping" message says which mid carries whose
// track. A source that is off keeps its transceiver with no track, so that
// turning it on again needs no renegotiation.

/** @typedef {import("./signal.js").Signal} Signal */
/** @typedef {"camera" | "mic" | "screen"} Source */

/** Camera layers: quarter, half and full resolution (rid q, h, f). */
export const SIMULCAST = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

export class Media {
  /**
   * @param {Signal} signal
   * @param {object} o
   * @param {RTCIceServer[]} o.iceServers
   * @param {() => void} o.onChange the tracks or mapping changed
   * @param {(pc: "pub" | "sub", state: RTCPeerConnectionState) => void} o.onState
   */
  constructor(signal, o) {
    this.signal = signal;
    this.o = o;
    this.pub = new RTCPeerConnection({ iceServers: o.iceServers });
    this.sub = new RTCPeerConnection({ iceServers: o.iceServers });
    /** @type {Record<string, string>} mid → track ID */
    this.mapping = {};
    /** @type {Partial<Record<Source, RTCRtpTransceiver>>} */
    this.senders = {};
    /** @type {Promise<void>} negotiations of pub, one at a time */
    this.negotiation = Promise.resolve();
    /** @type {((sdp: string) => void) | null} */
    this.awaitAnswer = null;
    this.closed = false;
    for (const [name, pc] of /** @type {const} */ ([["pub", this.pub], ["sub", this.sub]])) {
      pc.onicecandidate = (ev) => {
        if (ev.candidate && ev.candidate.candidate) this.signal.send({ type: "candidate", pc: name, candidate: ev.candidate.toJSON() });
      };
      pc.onconnectionstatechange = () => {
        if (this.closed) return;
        if (pc.connectionState === "failed") this.restart(name);
        this.o.onState(name, pc.connectionState);
      };
    }
    this.sub.ontrack = () => this.o.onChange();
  }

  /**
   * Creates the camera and microphone transceivers with the given tracks
   * (null: off) and makes the first offer.
   * @param {MediaStreamTrack | null} camera
   * @param {MediaStreamTrack | null} mic
   * @param {MediaStreamTrack | null} screen
   */
  async start(camera, mic, screen) {
    const stream = new MediaStream();
    this.senders.camera = this.pub.addTransceiver(camera ?? "video", {
      direction: "sendonly", streams: [stream], sendEncodings: SIMULCAST.map((e) => ({ ...e })),
    });
    this.senders.mic = this.pub.addTransceiver(mic ?? "audio", { direction: "sendonly", streams: [stream] });
    if (screen) this.addScreen(screen);
    await this.negotiate(false);
  }

  /** @param {MediaStreamTrack} track */
  addScreen(track) {
    const t = this.pub.addTransceiver(track, { direction: "sendonly", streams: [new MediaStream()] });
    // Text and slides: keep the resolution, let the frame rate fall.
    const params = t.sender.getParameters();
    params.degradationPreference = "maintain-resolution";
    t.sender.setParameters(params).catch(() => {});
    track.contentHint = "detail";
    this.senders.screen = t;
  }

  /**
   * Puts track (or nothing) on a source's transceiver; the screen's is
   * created, with a renegotiation, the first time it is shared.
   * @param {Source} source
   * @param {MediaStreamTrack | null} track
   */
  async setTrack(source, track) {
    const t = this.senders[source];
    if (!t) {
      if (!track) return;
      if (source !== "screen") throw new Error(`no ${source} transceiver`);
      this.addScreen(track);
      await this.negotiate(false);
      return;
    }
    if (track && source === "screen") track.contentHint = "detail";
    await t.sender.replaceTrack(track);
  }

  /**
   * Offers on pub and waits for the server's answer; offers never overlap.
   * @param {boolean} iceRestart
   */
  negotiate(iceRestart) {
    const run = async () => {
      if (this.closed) return;
      const offer = await this.pub.createOffer({ iceRestart });
      await this.pub.setLocalDescription(offer);
      /** @type {{mid: string, source: Source, simulcast?: boolean}[]} */
      const tracks = [];
      for (const [source, t] of Object.entries(this.senders)) {
        if (!t || !t.mid) continue;
        tracks.push({ mid: t.mid, source: /** @type {Source} */ (source), simulcast: source === "camera" });
      }
      const answered = new Promise((resolve) => { this.awaitAnswer = resolve; });
      this.signal.send({ type: "offer", pc: "pub", sdp: this.pub.localDescription?.sdp ?? "", tracks, iceRestart });
      const sdp = /** @type {string} */ (await answered);
      if (this.closed) return;
      await this.pub.setRemoteDescription({ type: "answer", sdp });
    };
    this.negotiation = this.negotiation.then(run, run);
    return this.negotiation;
  }

  /**
   * Restarts ICE of a failed connection: pub by a new offer, sub by
   * asking the server for one.
   * @param {"pub" | "sub"} name
   */
  restart(name) {
    if (name === "pub") this.negotiate(true).catch(() => {});
    else this.signal.send({ type: "restart" });
  }

  /**
   * Handles a media message from the server; messages are handled one at
   * a time, in order, by the caller.
   * @param {import("./signal.js").Msg} m
   */
  async handle(m) {
    if (this.closed) return;
    switch (m.type) {
      case "answer":
        this.awaitAnswer?.(m.sdp);
        this.awaitAnswer = null;
        return;
      case "offer": {
        await this.sub.setRemoteDescription({ type: "offer", sdp: m.sdp });
        const answer = await this.sub.createAnswer();
        await this.sub.setLocalDescription(answer);
        this.signal.send({ type: "answer", pc: "sub", sdp: this.sub.localDescription?.sdp ?? "" });
        this.o.onChange();
        return;
      }
      case "candidate": {
        // A pub candidate may overtake the answer being applied: add it
        // once the negotiation is done, without holding up the messages
        // behind it (the answer itself may be one of them).
        const add = (/** @type {RTCPeerConnection} */ pc) => pc.addIceCandidate(m.candidate).catch(() => {
          // A candidate of a description since replaced: harmless.
        });
        if (m.pc === "pub") this.negotiation.then(() => add(this.pub), () => add(this.pub));
        else await add(this.sub);
        return;
      }
      case "mapping":
        this.mapping = m.mids || {};
        this.o.onChange();
    }
  }

  /**
   * The received track that carries a published track now, if any.
   * @param {string} trackID "<participant>/<source>"
   * @returns {MediaStreamTrack | null}
   */
  received(trackID) {
    for (const [mid, id] of Object.entries(this.mapping)) {
      if (id !== trackID) continue;
      const t = this.sub.getTransceivers().find((x) => x.mid === mid);
      if (t) return t.receiver.track;
    }
    return null;
  }

  /** @returns {MediaStreamTrack[]} every received audio track */
  audioTracks() {
    return this.sub.getTransceivers().filter((t) => t.mid !== null && t.receiver.track.kind === "audio").map((t) => t.receiver.track);
  }

  /**
   * Frames decoded so far per received track ID (by the mapping).
   * @returns {Promise<Record<string, number>>}
   */
  async decoded() {
    /** @type {Record<string, number>} */
    const out = {};
    const stats = await this.sub.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video" && s.mid !== undefined && this.mapping[s.mid]) {
        out[this.mapping[s.mid]] = s.framesDecoded ?? 0;
      }
    });
    return out;
  }

  /**
   * Round trip and loss of the subscriber connection, for the quality
   * indicator.
   * @returns {Promise<{rtt: number, lost: number, received: number}>}
   */
  async health() {
    let rtt = 0, lost = 0, received = 0;
    const stats = await this.sub.getStats();
    stats.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && typeof s.currentRoundTripTime === "number") rtt = s.currentRoundTripTime;
      if (s.type === "inbound-rtp") {
        lost += s.packetsLost ?? 0;
        received += s.packetsReceived ?? 0;
      }
    });
    return { rtt, lost, received };
  }

  close() {
    this.closed = true;
    this.awaitAnswer = null;
    this.pub.close();
    this.sub.close();
  }
}
