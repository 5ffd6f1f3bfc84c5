package srtpgcm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// TestOpenPion opens what pion/srtp encrypts: streams across a wrap, with
// retransmissions from before it, gaps, and packets with header
// extensions; each must come back byte for byte, and a packet seen
// before must be refused as a replay.
func TestOpenPion(t *testing.T) {
	for _, tc := range gcmProfiles {
		t.Run(tc.name, func(t *testing.T) {
			key, salt, r := keyAndSalt(2, tc.keyLen)
			enc, rc := sealerAndReceiver(t, tc.profile, key, salt)
			for k, start := range []uint16{65500, 100, 65535} {
				ssrc := uint32(0x2000 + k)
				var st RecvStream
				seq := start
				var held [][]byte // sealed packets kept back, to arrive late
				opened := 0
				for i := range 3000 {
					pkt := extPacket(seq, ssrc, 20+r.IntN(1100), i%7 == 0, r)
					seq++
					sealed, err := enc.EncryptRTP(nil, pkt, nil)
					if err != nil {
						t.Fatal(err)
					}
					if i%13 == 4 {
						held = append(held, sealed) // delayed, as a retransmission is
						continue
					}
					in := append([]byte(nil), sealed...)
					got, err := rc.Open(in, &st)
					if err != nil || !bytes.Equal(got, pkt) {
						t.Fatalf("stream %d packet %d: %v, equal %v", k, i, err, bytes.Equal(got, pkt))
					}
					opened++
					if _, err := rc.Open(append([]byte(nil), sealed...), &st); !errors.Is(err, ErrReplay) {
						t.Fatalf("stream %d packet %d opened twice: %v", k, i, err)
					}
					if len(held) > 0 && i%13 == 12 {
						late := held[0]
						held = held[1:]
						if _, err := rc.Open(late, &st); err != nil {
							t.Fatalf("stream %d: a packet nine behind was refused: %v", k, err)
						}
						opened++
					}
				}
				if n, _ := st.Newest(); start > 60000 && n>>16 == 0 {
					t.Fatalf("stream %d never wrapped: the test does not test the wrap", k)
				}
				if opened < 2700 {
					t.Fatalf("stream %d: %d packets opened", k, opened)
				}
			}
		})
	}
}

// extPacket is packet with, when ext is set, a one-byte header extension
// (a TWCC sequence number), as every publisher's packet carries.
func extPacket(seq uint16, ssrc uint32, n int, ext bool, r *rand.Rand) []byte {
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: ssrc}
	if ext {
		if err := h.SetExtension(3, []byte{byte(seq >> 8), byte(seq)}); err != nil {
			panic(err)
		}
	}
	b, err := h.Marshal()
	if err != nil {
		panic(err)
	}
	for range n {
		b = append(b, byte(r.Uint32()))
	}
	return b
}

// TestOpenRefuses checks the packets Open must drop, and that none of them
// moves the stream's state.
func TestOpenRefuses(t *testing.T) {
	key, salt := make([]byte, 16), make([]byte, 12)
	key[0], salt[0] = 1, 2
	enc, rc := sealerAndReceiver(t, srtp.ProtectionProfileAeadAes128Gcm, key, salt)
	r := rand.New(rand.NewPCG(3, 3))
	seal := func(seq uint16) []byte {
		b, err := enc.EncryptRTP(nil, extPacket(seq, 7, 100, true, r), nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var st RecvStream
	first := seal(5000)
	// A forged packet first: the stream must not start from it.
	forged := append([]byte(nil), first...)
	forged[len(forged)-1] ^= 1
	if _, err := rc.Open(forged, &st); !errors.Is(err, ErrAuth) {
		t.Fatalf("forged: %v", err)
	}
	if _, ok := st.Newest(); ok {
		t.Fatal("a forged packet started the stream")
	}
	if _, err := rc.Open(first, &st); err != nil {
		t.Fatal(err)
	}
	for seq := uint16(5001); seq < 5000+ReplayWindow+10; seq++ {
		if _, err := rc.Open(seal(seq), &st); err != nil {
			t.Fatal(err)
		}
	}
	old := seal(5001) // pion/srtp seals it again with the same index
	if _, err := rc.Open(old, &st); !errors.Is(err, ErrReplay) {
		t.Fatalf("a packet more than the window behind: %v", err)
	}
	before := st
	if _, err := rc.Open([]byte{0x80, 96, 0, 1}, &st); !errors.Is(err, ErrShort) {
		t.Fatalf("short: %v", err)
	}
	truncated := seal(6100)
	if _, err := rc.Open(truncated[:20], &st); !errors.Is(err, ErrAuth) && !errors.Is(err, ErrShort) {
		t.Fatalf("truncated: %v", err)
	}
	if st != before {
		t.Fatal("refused packets changed the stream's state")
	}
	if _, err := NewReceiver(srtp.ProtectionProfileAes128CmHmacSha1_80, make([]byte, 16), make([]byte, 14)); err == nil {
		t.Fatal("an AES-CM profile was accepted")
	}
}

// TestOpenAfterWrapElsewhere starts a stream whose earlier packets another
// context opened, past a wrap: the first packet here has rollover count
// 1, which Open finds on its second try.
func TestOpenAfterWrapElsewhere(t *testing.T) {
	key, salt := make([]byte, 16), make([]byte, 12)
	enc, rc := sealerAndReceiver(t, srtp.ProtectionProfileAeadAes128Gcm, key, salt)
	r := rand.New(rand.NewPCG(4, 4))
	var st RecvStream
	for seq := uint16(65530); seq != 20; seq++ {
		pkt := extPacket(seq, 9, 200, false, r)
		b, err := enc.EncryptRTP(nil, pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if seq >= 65530 || seq < 3 {
			continue // opened elsewhere
		}
		got, err := rc.Open(b, &st)
		if err != nil || !bytes.Equal(got, pkt) {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	if n, _ := st.Newest(); n != 1<<16|19 {
		t.Fatalf("newest index %#x, want %#x", n, 1<<16|19)
	}
}

func BenchmarkOpen(b *testing.B) {
	key, salt := make([]byte, 16), make([]byte, 12)
	enc, rc := sealerAndReceiver(b, srtp.ProtectionProfileAeadAes128Gcm, key, salt)
	r := rand.New(rand.NewPCG(5, 5))
	const n = 4096
	sealed := make([][]byte, n)
	for i := range sealed {
		var err error
		if sealed[i], err = enc.EncryptRTP(nil, extPacket(uint16(i), 1, 1100, true, r), nil); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	var st RecvStream
	b.SetBytes(1100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			st = RecvStream{} // the same indexes again: a new stream
		}
		in := buf[:copy(buf, sealed[i%n])]
		if _, err := rc.Open(in, &st); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOpenCryptex opens packets whose header extensions and CSRCs pion/srtp
// encrypted (RFC 9335), with and without CSRCs, one-byte and two-byte
// extensions: each comes back as the plain RTP packet that was sealed.
func TestOpenCryptex(t *testing.T) {
	key, salt := make([]byte, 16), make([]byte, 12)
	key[3], salt[5] = 7, 9
	enc, rc := sealerAndReceiver(t, srtp.ProtectionProfileAeadAes128Gcm, key, salt, srtp.Cryptex(srtp.CryptexModeEnabled))
	r := rand.New(rand.NewPCG(6, 6))
	var st RecvStream
	for i := range 40 {
		h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(100 + i), Timestamp: 3000, SSRC: 11}
		if i%2 == 1 {
			h.CSRC = []uint32{0x01020304, 0x05060708}
		}
		val := []byte{byte(i), 0xaa}
		if i%4 >= 2 {
			val = make([]byte, 20) // too long for a one-byte header
			val[0] = byte(i)
		}
		if err := h.SetExtension(3, val); err != nil {
			t.Fatal(err)
		}
		plain, err := h.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for range 50 + r.IntN(500) {
			plain = append(plain, byte(r.Uint32()))
		}
		sealed, err := enc.EncryptRTP(nil, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := binary.BigEndian.Uint16(sealed[12+4*len(h.CSRC):]); p != cryptexOneByte && p != cryptexTwoByte {
			t.Fatalf("packet %d: pion/srtp did not use cryptex (profile %#x)", i, p)
		}
		if bytes.Contains(sealed, val) && len(val) > 2 {
			t.Fatalf("packet %d: the extension is in the clear", i)
		}
		got, err := rc.Open(sealed, &st)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("packet %d:\n got %x\nwant %x", i, got, plain)
		}
	}
}

// FuzzOpen feeds Open what the network may send: it must refuse or open,
// never panic or read past the packet, and leave the stream as it was
// when it refuses.
func FuzzOpen(f *testing.F) {
	key, salt := make([]byte, 16), make([]byte, 12)
	enc, rc := sealerAndReceiver(f, srtp.ProtectionProfileAeadAes128Gcm, key, salt, srtp.Cryptex(srtp.CryptexModeEnabled))
	for i := range 4 {
		h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), SSRC: 1}
		if i%2 == 1 {
			h.CSRC = []uint32{9}
			_ = h.SetExtension(1, []byte{1, 2})
		}
		b, _ := h.Marshal()
		b = append(b, make([]byte, 30)...)
		sealed, err := enc.EncryptRTP(nil, b, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
	}
	f.Add([]byte{0x9f, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(make([]byte, 12+TagLen))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var st RecvStream
		before := st
		out, err := rc.Open(append([]byte(nil), pkt...), &st)
		if err != nil {
			if st.newest != before.newest || st.started != before.started || st.seen != before.seen {
				t.Fatal("a refused packet changed the stream")
			}
			return
		}
		if len(out) > len(pkt) || len(out) < 12 {
			t.Fatalf("opened %d bytes of %d", len(out), len(pkt))
		}
	})
}

// sealerAndReceiver returns pion/srtp's context sealing with a master key
// and salt, and the Receiver opening what it seals.
func sealerAndReceiver(tb testing.TB, profile srtp.ProtectionProfile, key, salt []byte, opts ...srtp.ContextOption) (*srtp.Context, *Receiver) {
	tb.Helper()
	enc, err := srtp.CreateContext(key, salt, profile, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	rc, err := NewReceiver(profile, key, salt)
	if err != nil {
		tb.Fatal(err)
	}
	return enc, rc
}
