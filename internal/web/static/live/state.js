// @ts-check
// What the classroom page knows (the room as the server last described
// it, and what this page sends), and the small interface every part of
// the page is handed: the parts talk to each other only through it.

/**
 * @typedef {{mic: boolean, camera: boolean, screen: boolean}} MediaState
 * @typedef {{id: string, name: string, role: string, media: MediaState, hand: boolean, group: string, joinedAt: string}} Participant
 * @typedef {{id: string, participant: string, source: string, layers?: string[]}} TrackInfo
 * @typedef {{id: string, question: string, options: string[], multiple: boolean, closed: boolean, yourVote?: number[]}} Poll
 * @typedef {{poll: string, counts: number[], voters: number}} Results
 * @typedef {{id: string, from: string, fromName: string, to: string, group: string, text: string, sentAt: string}} ChatMessage
 * @typedef {{groups: {id: string, participants: string[]}[], timerEndsAt: string | null, you: string}} Breakouts
 * @typedef {import("./signal.js").Msg} Msg
 * @typedef {import("./signal.js").Signal} Signal
 * @typedef {import("./media.js").Media} Media
 * @typedef {ReturnType<typeof newState>} State
 */

/**
 * The interface the page's parts share. Media and signal are functions:
 * both are replaced when the connection comes back.
 * @typedef {object} App
 * @property {State} S
 * @property {boolean} host whether this page joins as a host
 * @property {() => Media | null} media
 * @property {() => Signal | null} signal
 * @property {(text: string) => void} fail shows text in the alert line (empty hides it)
 * @property {(text: string) => void} notice shows text in the status line
 * @property {(m: Msg, errEl?: HTMLElement) => Promise<Msg | null>} ask sends a request; a refusal shows in errEl, else in the alert line
 * @property {() => void} render redraws what the state shows
 * @property {(name: string, open?: boolean) => void} openPanel toggles a panel, or opens it with open set
 */

export function newState() {
  return {
    /** @type {Participant | null} */ you: null,
    /** @type {Map<string, Participant>} */ people: new Map(),
    /** @type {string[]} */ hands: [],
    locked: false,
    micsLocked: false,
    /** @type {Breakouts} */
    breakouts: { groups: [], timerEndsAt: null, you: "" },
    /** @type {Map<string, Poll>} */ polls: new Map(),
    /** @type {Map<string, Results>} */ results: new Map(),
    /** @type {TrackInfo[]} */ tracks: [],
    speaker: "",
    pinned: "",
    page: 0,
    quality: { server: 3, local: 3 },
    /** Each participant's connection quality as the server reports it. */
    /** @type {Map<string, number>} */ qualities: new Map(),
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
}

/**
 * @param {State} S
 * @param {string} id
 */
export function nameOf(S, id) {
  return S.people.get(id)?.name ?? "Someone";
}

/** @param {string} g */
export function groupName(g) {
  return g ? `breakout room ${g.replace(/^b/, "")}` : "the main room";
}
