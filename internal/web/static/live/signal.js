// @ts-check
// The signalling connection of docs/protocol.md: one WebSocket, JSON text
// frames, the join message first, requests answered by "ok" or "error"
// with their id, and a resume key that lets a dropped connection come back
// as the same participant within the server's resume window.

/**
 * @typedef {{type: string, id?: number, [key: string]: any}} Msg
 * @typedef {{code: string, message: string, field?: string, reason?: string}} SignalError
 */

/** Close codes after which reconnecting cannot help (docs/protocol.md). */
const FINAL = new Set([1000, 4000, 4001, 4003, 4004, 4009, 4010, 4011, 4029]);

export class Signal {
  /**
   * @param {object} o
   * @param {string} o.url WebSocket URL of GET /rtc
   * @param {string} o.token the join token
   * @param {string} o.classID the class the page shows
   * @param {() => boolean} o.muted whether to (re)join with the microphone off
   * @param {(m: Msg) => void} o.onMessage every message that is not a reply
   * @param {(m: Msg) => void} o.onJoined each joined, the first and after a resume
   * @param {(why: {code: number, reason: string, error?: SignalError}) => void} o.onClosed the connection ended for good
   * @param {(attempt: number) => void} o.onDropped the connection dropped; reconnecting
   */
  constructor(o) {
    this.o = o;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.resume = "";
    this.resumeWithin = 30;
    this.nextID = 1;
    /** @type {Map<number, {resolve: (m: Msg) => void, reject: (e: SignalError) => void}>} */
    this.pending = new Map();
    this.over = false;
    this.joined = false;
    this.droppedAt = 0;
    this.attempt = 0;
    /** @type {SignalError | undefined} */
    this.lastError = undefined;
  }

  /** Opens the connection and sends the join message. */
  connect() {
    const ws = new WebSocket(this.o.url);
    this.ws = ws;
    this.joined = false;
    ws.onopen = () => {
      /** @type {Msg} */
      const join = { type: "join", v: 1, token: this.o.token, class: this.o.classID, muted: this.o.muted() };
      if (this.resume) join.resume = this.resume;
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      /** @type {Msg} */
      let m;
      try {
        m = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this.receive(m);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.closed(ev.code, ev.reason);
    };
  }

  /** @param {Msg} m */
  receive(m) {
    if (m.type === "joined") {
      this.joined = true;
      this.attempt = 0;
      this.droppedAt = 0;
      this.resume = m.resume;
      this.resumeWithin = m.resumeWithin || 30;
      this.o.onJoined(m);
      return;
    }
    if ((m.type === "ok" || m.type === "error") && m.id && this.pending.has(m.id)) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.type === "ok") p?.resolve(m);
      else p?.reject({ code: m.code, message: m.message, field: m.field, reason: m.reason });
      return;
    }
    if (m.type === "error") this.lastError = { code: m.code, message: m.message, field: m.field, reason: m.reason };
    this.o.onMessage(m);
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  closed(code, reason) {
    for (const p of this.pending.values()) p.reject({ code: "UNAVAILABLE", message: "the connection dropped" });
    this.pending.clear();
    if (this.over) return;
    // A join refused outright, or an ending the server chose, is final;
    // a drop of a joined connection is worth coming back from.
    const everJoined = this.resume !== "";
    if (FINAL.has(code) || !everJoined) {
      this.over = true;
      this.o.onClosed({ code, reason, error: this.lastError });
      return;
    }
    if (!this.droppedAt) this.droppedAt = Date.now();
    // Past the resume window the token alone may still let us in.
    if (Date.now() - this.droppedAt > (this.resumeWithin + 30) * 1000) {
      this.over = true;
      this.o.onClosed({ code, reason: "the connection could not be restored", error: this.lastError });
      return;
    }
    this.attempt++;
    this.o.onDropped(this.attempt);
    const delay = Math.min(500 * 2 ** (this.attempt - 1), 5000);
    setTimeout(() => { if (!this.over) this.connect(); }, delay);
  }

  /**
   * Sends a message without waiting for an answer.
   * @param {Msg} m
   */
  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.joined) this.ws.send(JSON.stringify(m));
  }

  /**
   * Sends a request and resolves with "ok" or rejects with the error.
   * @param {Msg} m
   * @returns {Promise<Msg>}
   */
  request(m) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.joined) {
      return Promise.reject({ code: "UNAVAILABLE", message: "Not connected: wait for the connection to come back." });
    }
    const id = this.nextID++;
    this.ws.send(JSON.stringify({ ...m, id }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** Leaves the class: the server forgets the participant at once. */
  async leave() {
    try {
      await this.request({ type: "leave" });
    } catch {
      // Leaving is best effort: closing the socket ends the stay too.
    }
    this.close();
  }

  /** Closes the connection for good without leaving (the page goes away). */
  close() {
    this.over = true;
    this.ws?.close(1000, "left");
  }
}
