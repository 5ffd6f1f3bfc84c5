package srtpgcm

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// packet makes an RTP packet: a fixed header (with one CSRC when csrc is
// set, to vary the header's length) and a payload of n bytes.
func packet(seq uint16, ssrc uint32, n int, csrc bool, r *rand.Rand) ([]byte, int) {
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: ssrc, Marker: seq%3 == 0}
	if csrc {
		h.CSRC = []uint32{0xdecafbad}
	}
	b, err := h.Marshal()
	if err != nil {
		panic(err)
	}
	hl := len(b)
	for range n {
		b = append(b, byte(r.Uint32()))
	}
	return b, hl
}

// gcmProfiles are the profiles the package implements, with their key
// lengths.
var gcmProfiles = []struct {
	name    string
	profile srtp.ProtectionProfile
	keyLen  int
}{
	{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 16},
	{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm, 32},
}

// keyAndSalt returns a master key of keyLen bytes and a 12-byte salt,
// drawn from a generator seeded with seed and keyLen, and the generator
// for the rest of the test.
func keyAndSalt(seed uint64, keyLen int) (key, salt []byte, r *rand.Rand) {
	r = rand.New(rand.NewPCG(seed, uint64(keyLen)))
	key, salt = make([]byte, keyLen), make([]byte, 12)
	for i := range key {
		key[i] = byte(r.Uint32())
	}
	for i := range salt {
		salt[i] = byte(r.Uint32())
	}
	return key, salt, r
}

// TestSameAsPion seals streams with every kind of sequence — in order
// across a wrap, with retransmissions of packets from before it, with
// jumps — and checks each packet against pion/srtp's EncryptRTP of the
// same packet, byte for byte, and that pion/srtp's receiving side
// decrypts it back.
func TestSameAsPion(t *testing.T) {
	for _, tc := range gcmProfiles {
		t.Run(tc.name, func(t *testing.T) {
			key, salt, r := keyAndSalt(1, tc.keyLen)
			s, err := New(tc.profile, key, salt)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := srtp.CreateContext(key, salt, tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := srtp.CreateContext(key, salt, tc.profile, srtp.SRTPNoReplayProtection())
			if err != nil {
				t.Fatal(err)
			}
			streams := map[uint32]*Stream{}
			// Each stream: starting near the wrap or not, sent in
			// order with now and then an old packet again (a NACK) or a
			// skip ahead (packets lost upstream).
			for k, start := range []uint16{65500, 100, 40000, 65535} {
				ssrc := uint32(0x1000 + k)
				streams[ssrc] = &Stream{}
				seq := start
				var sent []uint16
				for i := range 3000 {
					send := seq
					switch {
					case i%17 == 5 && len(sent) > 50:
						send = sent[len(sent)-1-r.IntN(50)] // a retransmission
					case i%97 == 3:
						seq += uint16(r.IntN(200)) // a gap
						send = seq
						seq++
					default:
						seq++
					}
					sent = append(sent, send)
					pkt, hl := packet(send, ssrc, 20+r.IntN(1100), i%11 == 0, r)
					got, err := s.Seal(make([]byte, 0, len(pkt)+TagLen), pkt[:hl], pkt[hl:], ssrc, send, streams[ssrc])
					if err != nil {
						t.Fatalf("stream %d packet %d (seq %d): %v", k, i, send, err)
					}
					want, err := ref.EncryptRTP(nil, pkt, nil)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						roc, _ := ref.ROC(ssrc)
						t.Fatalf("stream %d packet %d (seq %d, pion's rollover count %d): sealed differently from pion/srtp", k, i, send, roc)
					}
					back, err := dec.DecryptRTP(nil, got, nil)
					if err != nil || !bytes.Equal(back, pkt) {
						t.Fatalf("stream %d packet %d: pion/srtp does not decrypt it back: %v", k, i, err)
					}
				}
				if roc, _ := ref.ROC(ssrc); start > 60000 && roc == 0 {
					t.Fatalf("stream %d never wrapped: the test does not test the wrap", k)
				}
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := New(srtp.ProtectionProfileAes128CmHmacSha1_80, make([]byte, 16), make([]byte, 14)); err == nil {
		t.Fatal("an AES-CM profile was accepted")
	}
	if _, err := New(srtp.ProtectionProfileAeadAes128Gcm, make([]byte, 32), make([]byte, 12)); err == nil {
		t.Fatal("a 256-bit key was accepted for AES-128-GCM")
	}
	s, err := New(srtp.ProtectionProfileAeadAes128Gcm, make([]byte, 16), make([]byte, 12))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seal(nil, make([]byte, 8), nil, 1, 1, &Stream{}); err == nil {
		t.Fatal("a header shorter than 12 bytes was sealed")
	}
}

func BenchmarkSeal(b *testing.B) {
	s, err := New(srtp.ProtectionProfileAeadAes128Gcm, make([]byte, 16), make([]byte, 12))
	if err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, 1200)
	pkt[0] = 0x80
	dst := make([]byte, 0, 1300)
	var st Stream
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	seq := uint16(0)
	for b.Loop() {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		if _, err := s.Seal(dst, pkt[:12], pkt[12:], 1, seq, &st); err != nil {
			b.Fatal(err)
		}
		seq++
	}
}

// BenchmarkPionEncrypt is the same packet through pion/srtp's EncryptRTP,
// the same-run baseline.
func BenchmarkPionEncrypt(b *testing.B) {
	ctx, err := srtp.CreateContext(make([]byte, 16), make([]byte, 12), srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, 1200)
	pkt[0] = 0x80
	dst := make([]byte, 0, 1300)
	var h rtp.Header
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	seq := uint16(0)
	for b.Loop() {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		if _, err := ctx.EncryptRTP(dst, pkt, &h); err != nil {
			b.Fatal(err)
		}
		seq++
	}
}
