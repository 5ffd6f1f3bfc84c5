package srtpgcm

import (
	"encoding/binary"
	"errors"

	"github.com/pion/srtp/v3"
)

// ReplayWindow is how many packets behind the newest a packet may arrive
// and still be accepted: a publisher's answer to a NACK comes a round trip
// after the loss, dozens of packets on at 720p. 1,024 is what libwebrtc
// and Firefox use.
const ReplayWindow = 1024

// Errors of Open. A caller drops the packet either way; they differ for
// counting.
var (
	ErrAuth   = errors.New("srtpgcm: packet failed authentication")
	ErrReplay = errors.New("srtpgcm: packet replayed or too old")
	ErrShort  = errors.New("srtpgcm: packet too short")
)

// Receiver opens the SRTP packets of one crypto context (the remote side
// of one DTLS-SRTP session). Like Sender it holds no per-stream state and
// is safe for concurrent use.
type Receiver struct{ session }

// NewReceiver derives the session key and salt from the remote side's
// master key and salt of an AES-GCM profile.
func NewReceiver(profile srtp.ProtectionProfile, masterKey, masterSalt []byte) (*Receiver, error) {
	s, err := newSession(profile, masterKey, masterSalt)
	if err != nil {
		return nil, err
	}
	return &Receiver{s}, nil
}

// RecvStream is the receiving state of one SSRC: the newest packet index
// authenticated (rollover count and sequence number) and which of the
// ReplayWindow indexes before it have been seen. The zero value has seen
// nothing. It belongs to its caller, who must not open two packets of one
// stream at once.
type RecvStream struct {
	newest  uint64 // roc<<16 | seq
	started bool
	seen    [ReplayWindow / 64]uint64 // bit i%ReplayWindow: index i seen
	iv      [12]byte
}

// Newest returns the extended sequence number (rollover count and
// sequence number) of the newest packet opened, and whether there is one.
func (st *RecvStream) Newest() (uint64, bool) { return st.newest, st.started }

// guess returns RFC 3711 §3.3.1's estimate of a packet's index from its
// sequence number: the one nearest the newest authenticated.
func (st *RecvStream) guess(seq uint16) uint64 {
	roc := st.newest >> 16
	last := uint16(st.newest)
	switch {
	case last < 0x8000 && seq > last && seq-last > 0x8000 && roc > 0:
		roc--
	case last >= 0x8000 && seq < last && last-seq > 0x8000:
		roc++
	}
	return roc<<16 | uint64(seq)
}

// replayed reports whether index has been seen or is too old to tell.
func (st *RecvStream) replayed(index uint64) bool {
	if !st.started || index > st.newest {
		return false
	}
	if st.newest-index >= ReplayWindow {
		return true
	}
	i := index % ReplayWindow
	return st.seen[i/64]&(1<<(i%64)) != 0
}

// accept records index as seen.
func (st *RecvStream) accept(index uint64) {
	switch {
	case !st.started:
		st.started, st.newest = true, index
		st.seen = [ReplayWindow / 64]uint64{}
	case index > st.newest:
		// Forget the slots the window moves over: they now stand for
		// indexes not yet seen.
		if index-st.newest >= ReplayWindow {
			st.seen = [ReplayWindow / 64]uint64{}
		} else {
			for j := st.newest + 1; j < index; j++ {
				k := j % ReplayWindow
				st.seen[k/64] &^= 1 << (k % 64)
			}
		}
		st.newest = index
	}
	i := index % ReplayWindow
	st.seen[i/64] |= 1 << (i % 64)
}

// HeaderLen returns the length of an RTP packet's header: the fixed part,
// the CSRCs and the extension, or 0 if the packet is too short to hold
// them.
func HeaderLen(pkt []byte) int {
	if len(pkt) < 12 {
		return 0
	}
	n := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < n+4 {
			return 0
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(pkt[n+2:]))
	}
	if n > len(pkt) {
		return 0
	}
	return n
}

// Open authenticates and decrypts one SRTP packet in place and returns the
// RTP packet, a prefix of pkt. A packet that fails, replayed or forged,
// leaves st as it was. The first packet of a stream is taken at rollover
// count 0, or 1 if that does not authenticate: a stream whose first
// packets another context opened may have wrapped there. A packet whose
// header extensions and CSRCs are encrypted too (RFC 9335 cryptex, which
// Pion and Chromium negotiate) comes out as a plain RTP packet.
func (r *Receiver) Open(pkt []byte, st *RecvStream) ([]byte, error) {
	hl := HeaderLen(pkt)
	if hl == 0 || len(pkt) < hl+TagLen {
		return nil, ErrShort
	}
	ssrc := binary.BigEndian.Uint32(pkt[8:])
	seq := binary.BigEndian.Uint16(pkt[2:])
	index := uint64(seq)
	if st.started {
		index = st.guess(seq)
		if st.replayed(index) {
			return nil, ErrReplay
		}
	}
	// RFC 9335 §5.1: with cryptex only the fixed header and the
	// extension's first four bytes (moved before the CSRCs) are in the
	// clear and authenticated.
	aad, cc := hl, int(pkt[0]&0x0f)
	cryptex := false
	if pkt[0]&0x10 != 0 {
		switch binary.BigEndian.Uint16(pkt[12+4*cc:]) {
		case cryptexOneByte, cryptexTwoByte:
			cryptex, aad = true, 16
			extFirst(pkt, cc)
		}
	}
	var n int
	var err error
	if st.started {
		n, err = r.open(pkt, aad, ssrc, index, st)
	} else {
		n, index, err = r.openFirst(pkt, aad, ssrc, seq, st)
	}
	if cryptex {
		csrcFirst(pkt, cc)
	}
	if err != nil {
		return nil, ErrAuth
	}
	if cryptex {
		prof := pkt[12+4*cc:]
		if binary.BigEndian.Uint16(prof) == cryptexOneByte {
			binary.BigEndian.PutUint16(prof, 0xbede)
		} else {
			binary.BigEndian.PutUint16(prof, 0x1000)
		}
	}
	st.accept(index)
	return pkt[:aad+n], nil
}

// RFC 9335's extension profiles: one-byte and two-byte headers, encrypted.
const (
	cryptexOneByte = 0xc0de
	cryptexTwoByte = 0xc2de
)

// extFirst moves the extension's first four bytes before the cc CSRCs,
// where cryptex authenticates them; csrcFirst moves them back.
func extFirst(pkt []byte, cc int) {
	if cc == 0 {
		return
	}
	var ext [4]byte
	copy(ext[:], pkt[12+4*cc:])
	copy(pkt[16:], pkt[12:12+4*cc])
	copy(pkt[12:], ext[:])
}

func csrcFirst(pkt []byte, cc int) {
	if cc == 0 {
		return
	}
	var ext [4]byte
	copy(ext[:], pkt[12:16])
	copy(pkt[12:], pkt[16:16+4*cc])
	copy(pkt[12+4*cc:], ext[:])
}

// openFirst opens a stream's first packet at rollover count 0, then 1. A
// failed Open leaves its destination undefined, so the ciphertext is
// kept for the second try; here, not in Open, so that the copy is paid
// once per stream and not per packet.
func (r *Receiver) openFirst(pkt []byte, aad int, ssrc uint32, seq uint16, st *RecvStream) (int, uint64, error) {
	var keep [1500]byte
	if len(pkt) > len(keep) {
		n, err := r.open(pkt, aad, ssrc, uint64(seq), st)
		return n, uint64(seq), err
	}
	copy(keep[:], pkt)
	if n, err := r.open(pkt, aad, ssrc, uint64(seq), st); err == nil {
		return n, uint64(seq), nil
	}
	copy(pkt, keep[:len(pkt)])
	index := 1<<16 | uint64(seq)
	n, err := r.open(pkt, aad, ssrc, index, st)
	return n, index, err
}

// open decrypts what follows the aad bytes of pkt in place at the given
// index, and returns the plaintext's length.
func (r *Receiver) open(pkt []byte, aad int, ssrc uint32, index uint64, st *RecvStream) (int, error) {
	nonce(&st.iv, &r.salt, ssrc, uint32(index>>16), uint16(index))
	p, err := r.aead.Open(pkt[aad:aad], st.iv[:], pkt[aad:], pkt[:aad])
	return len(p), err
}
