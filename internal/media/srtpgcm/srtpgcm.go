// Package srtpgcm encrypts and decrypts SRTP packets with AEAD AES-GCM
// (RFC 7714), the profile the sfu negotiates first.
//
// pion/srtp does the same work, per packet: it parses the header it was
// handed, looks the stream's state up in a map, marshals the header again
// and seals. A forwarder already holds the marshalled header and knows the
// stream, so a Sender derives the session key and salt once, the caller
// keeps each stream's rollover state (a Stream), and Seal is the IV, one
// GCM seal over the payload with the header as associated data, and the
// copy of the header. The output is byte for byte pion/srtp's (a test
// checks it), so any SRTP receiver decrypts it. A Receiver is the other
// direction: Open authenticates and decrypts a packet in place, with the
// replay check and rollover estimate of RFC 3711 kept per stream by the
// caller (a RecvStream).
package srtpgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pion/srtp/v3"
)

// TagLen is the length of the authentication tag each packet grows by.
const TagLen = 16

// RFC 3711 §4.3.1 key derivation labels.
const (
	labelEncryption = 0x00
	labelSalt       = 0x02
)

// Sender seals the SRTP packets of one crypto context (one side of one
// DTLS-SRTP session). It holds no per-stream state and is safe for
// concurrent use: cipher.AEAD's Seal is.
type Sender struct{ session }

// New derives the session key and salt from a master key and salt of the
// AEAD_AES_128_GCM or AEAD_AES_256_GCM profile.
func New(profile srtp.ProtectionProfile, masterKey, masterSalt []byte) (*Sender, error) {
	s, err := newSession(profile, masterKey, masterSalt)
	if err != nil {
		return nil, err
	}
	return &Sender{s}, nil
}

// session is what sealing and opening share: the session's AEAD and salt.
type session struct {
	aead cipher.AEAD
	salt [12]byte
}

// newSession derives a session's AEAD and salt from the master key and
// salt of an AES-GCM profile.
func newSession(profile srtp.ProtectionProfile, masterKey, masterSalt []byte) (session, error) {
	var keyLen int
	switch profile {
	case srtp.ProtectionProfileAeadAes128Gcm:
		keyLen = 16
	case srtp.ProtectionProfileAeadAes256Gcm:
		keyLen = 32
	default:
		return session{}, fmt.Errorf("srtpgcm: profile %v is not AES-GCM", profile)
	}
	if len(masterKey) != keyLen || len(masterSalt) != 12 {
		return session{}, fmt.Errorf("srtpgcm: %d-byte key and %d-byte salt, want %d and 12", len(masterKey), len(masterSalt), keyLen)
	}
	master, err := aes.NewCipher(masterKey)
	if err != nil {
		return session{}, err
	}
	block, err := aes.NewCipher(derive(master, masterSalt, labelEncryption, keyLen))
	if err != nil {
		return session{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return session{}, err
	}
	s := session{aead: aead}
	copy(s.salt[:], derive(master, masterSalt, labelSalt, 12))
	return s, nil
}

// nonce writes RFC 7714 §8.1's IV into iv: 00 00 | SSRC | ROC | SEQ,
// exclusive-ored with the session salt.
func nonce(iv *[12]byte, salt *[12]byte, ssrc, roc uint32, seq uint16) {
	*iv = [12]byte{}
	binary.BigEndian.PutUint32(iv[2:], ssrc)
	binary.BigEndian.PutUint32(iv[6:], roc)
	binary.BigEndian.PutUint16(iv[10:], seq)
	for i := range iv {
		iv[i] ^= salt[i]
	}
}

// derive is RFC 3711's AES-CM key derivation with a key derivation rate of
// 0 (what DTLS-SRTP uses): the master salt with the label at byte 7,
// a block counter in the last two bytes, encrypted under the master key.
func derive(master cipher.Block, masterSalt []byte, label byte, n int) []byte {
	var in [16]byte
	copy(in[:], masterSalt)
	in[7] ^= label
	out := make([]byte, (n+15)/16*16)
	for i := 0; i*16 < n; i++ {
		binary.BigEndian.PutUint16(in[14:], uint16(i))
		master.Encrypt(out[i*16:], in[:])
	}
	return out[:n]
}

// Stream is the rollover state of one SSRC: its packet index (rollover
// count and sequence number) as far as it has been sent. The zero value
// is a stream that has sent nothing. It belongs to its caller, who must
// not seal two packets of one stream at once.
type Stream struct {
	index   uint64 // roc<<16 | seq of the newest packet sealed
	started bool
	iv      [12]byte // Seal's nonce: here, so that it does not escape to the heap per packet
}

// Wrapped reports whether the stream's sequence numbers have wrapped
// (its rollover count is no longer 0): a receiver then expects a count
// that another context, starting at 0, would not send.
func (st *Stream) Wrapped() bool { return st.index>>16 != 0 }

// roc returns the rollover count of seq: the one that puts the packet's
// index nearest the newest sealed (RFC 3711 §3.3.1), so that a
// retransmission from before a wrap keeps the count it went out with.
// The newest index moves forward only.
func (st *Stream) roc(seq uint16) (uint32, error) {
	if !st.started {
		st.started, st.index = true, uint64(seq)
		return 0, nil
	}
	last := st.index
	roc := uint32(last >> 16)
	lastSeq := uint16(last)
	switch {
	case lastSeq < 0x8000 && seq > lastSeq && seq-lastSeq > 0x8000 && roc > 0:
		// Far ahead of a low sequence number: it came before the wrap.
		// (In the first rollover there is no earlier one: a jump that
		// far forward is taken as it is, as pion/srtp does.)
		roc--
	case lastSeq >= 0x8000 && seq < lastSeq && lastSeq-seq > 0x8000:
		// Far behind a high one: the sequence wrapped.
		roc++
	}
	if idx := uint64(roc)<<16 | uint64(seq); idx > last {
		if idx >= 1<<48 {
			return 0, errors.New("srtpgcm: 2^48 packets sealed with one key")
		}
		st.index = idx
	}
	return roc, nil
}

// Seal appends to dst[:0] the SRTP packet of an RTP packet given as its
// marshalled header (fixed part, CSRCs and extension) and its payload,
// with SSRC ssrc and sequence number seq, and returns it. Header and
// payload may lie apart, so that nobody copies them together first. dst
// should have room for len(hdr)+len(payload)+TagLen bytes; it must not
// overlap either.
func (s *Sender) Seal(dst, hdr, payload []byte, ssrc uint32, seq uint16, st *Stream) ([]byte, error) {
	if len(hdr) < 12 {
		return nil, errors.New("srtpgcm: RTP header shorter than 12 bytes")
	}
	roc, err := st.roc(seq)
	if err != nil {
		return nil, err
	}
	iv := &st.iv
	nonce(iv, &s.salt, ssrc, roc, seq)
	out := append(dst[:0], hdr...)
	return s.aead.Seal(out, iv[:], payload, hdr), nil
}
