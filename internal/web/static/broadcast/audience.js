// @ts-check
// The audience connection of a broadcast class (docs/protocol.md, "Broadcast
// audience protocol"): one WebSocket, JSON text frames (several messages
// to a frame, one per line, when the server batches), the hello with the
// join token first, requests answered by "ok" or "error" with their id.
// A dropped connection comes back by itself with a fresh hello; a ban, an
// ended class or a refused token does not.

/**
 * @typedef {{type: string, id?: number, [key: string]: any}} Msg
 * @typedef {{code: string, message: string, field?: string}} AudienceError
 */

export class Audience {
  /**
   * @param {object} o
   * @param {string} o.url WebSocket URL of GET /audience
   * @param {string} o.token the join token
   * @param {string} o.classID the class the page shows
   * @param {(m: Msg) => void} o.onWelcome the server accepted the hello (first time and after each reconnect)
   * @param {(m: Msg) => void} o.onMessage every message that is not a reply
   * @param {(attempt: number) => void} o.onDropped the connection dropped; reconnecting
   * @param {(why: {code: number, reason: string, error?: AudienceError}) => void} o.onClosed the connection ended for good
   */
  constructor(o) {
    this.o = o;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.nextID = 1;
    /** @type {Map<number, {resolve: (m: Msg) => void, reject: (e: AudienceError) => void}>} */
    this.pending = new Map();
    this.welcomed = false;
    this.everWelcomed = false;
    this.over = false;
    this.attempt = 0;
    /** @type {AudienceError | undefined} */
    this.lastError = undefined;
    /** @type {string[]} */
    this.seen = [];
  }

  connect() {
    const ws = new WebSocket(this.o.url);
    this.ws = ws;
    this.welcomed = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", v: 1, token: this.o.token, class: this.o.classID }));
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      // A frame may carry several messages, one per line: the server
      // batches what waited for a busy viewer into one write.
      for (const line of String(ev.data).split("\n")) {
        if (!line) continue;
        /** @type {Msg} */
        let m;
        try {
          m = JSON.parse(line);
        } catch {
          continue;
        }
        this.receive(m);
      }
    };
    ws.onclose = (ev) => {
      if (ws === this.ws) this.closed(ev.code, ev.reason);
    };
  }

  /** @param {Msg} m */
  receive(m) {
    // The types of the last messages, for tests and for a look in the console.
    this.seen.push(m.type);
    if (this.seen.length > 50) this.seen.shift();
    if (!this.welcomed && m.type === "welcome") {
      this.welcomed = this.everWelcomed = true;
      this.attempt = 0;
      this.o.onWelcome(m);
      return;
    }
    if ((m.type === "ok" || m.type === "error") && m.id && this.pending.has(m.id)) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.type === "ok") p?.resolve(m);
      else p?.reject({ code: m.code, message: m.message, field: m.field });
      return;
    }
    if (m.type === "error") this.lastError = { code: m.code, message: m.message, field: m.field };
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
    // The server's own close codes (4000 and up) say why it sent us away
    // (a bad token, a ban, the end of the class): coming back cannot help.
    // So does a hello never accepted. A network drop is worth retrying.
    if (code === 1000 || code >= 4000 || !this.everWelcomed) {
      this.over = true;
      this.o.onClosed({ code, reason, error: this.lastError });
      return;
    }
    this.attempt++;
    this.o.onDropped(this.attempt);
    const delay = Math.min(500 * 2 ** (this.attempt - 1), 5000);
    setTimeout(() => { if (!this.over) this.connect(); }, delay);
  }

  /**
   * Sends a request and resolves with "ok" or rejects with the error.
   * @param {Msg} m
   * @returns {Promise<Msg>}
   */
  request(m) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.welcomed) {
      return Promise.reject({ code: "UNAVAILABLE", message: "Not connected: wait for the connection to come back." });
    }
    const id = this.nextID++;
    this.ws.send(JSON.stringify({ ...m, id }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** Closes the connection for good (the page goes away). */
  close() {
    this.over = true;
    this.ws?.close(1000, "left");
  }
}
