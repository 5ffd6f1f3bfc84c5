package srtpkeys

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/srtp/v3"
)

// shake runs a real DTLS handshake between a pion/dtls client and
// server over loopback UDP, the server's hook and key log going to a
// Collector, and returns the Collector and the client's view of the
// connection.
func shake(t *testing.T, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile, ems dtls.ExtendedMasterSecretType) (*Collector, dtls.State) {
	t.Helper()
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &Collector{}
	server, err := dtls.ServerWithOptions(sc, cc.LocalAddr(),
		dtls.WithCertificates(cert),
		dtls.WithCipherSuites(suite),
		dtls.WithSRTPProtectionProfiles(profile),
		dtls.WithExtendedMasterSecret(ems),
		dtls.WithKeyLogWriter(col),
		dtls.WithServerHelloMessageHook(col.ServerHello),
	)
	if err != nil {
		t.Fatal(err)
	}
	client, err := dtls.ClientWithOptions(cc, sc.LocalAddr(),
		dtls.WithCertificates(cert),
		dtls.WithInsecureSkipVerify(true),
		dtls.WithCipherSuites(suite),
		dtls.WithSRTPProtectionProfiles(profile),
		dtls.WithExtendedMasterSecret(ems),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	st, ok := client.ConnectionState()
	if !ok {
		t.Fatal("client has no connection state")
	}
	return col, st
}

// TestKeysMatchTheExporter checks the recovered keys against the
// client's own RFC 5705 exporter, over the suites and profiles WebRTC
// peers negotiate, with and without the extended master secret.
func TestKeysMatchTheExporter(t *testing.T) {
	cases := []struct {
		suite   dtls.CipherSuiteID
		profile dtls.SRTPProtectionProfile
		ems     dtls.ExtendedMasterSecretType
	}{
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM, dtls.RequestExtendedMasterSecret},
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_256_GCM, dtls.DisableExtendedMasterSecret},
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.SRTP_AEAD_AES_128_GCM, dtls.RequestExtendedMasterSecret},
		{dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.RequestExtendedMasterSecret},
	}
	for _, tc := range cases {
		t.Run(tc.suite.String()+"/"+srtp.ProtectionProfile(tc.profile).String(), func(t *testing.T) {
			col, st := shake(t, tc.suite, tc.profile, tc.ems)
			keys, err := col.Keys()
			if err != nil {
				t.Fatal(err)
			}
			if keys.Profile != srtp.ProtectionProfile(tc.profile) {
				t.Fatalf("profile %v, want %v", keys.Profile, srtp.ProtectionProfile(tc.profile))
			}
			// The client's view: its remote keys are the server's local ones.
			var want srtp.Config
			want.Profile = srtp.ProtectionProfile(tc.profile)
			if err := want.ExtractSessionKeysFromDTLS(&st, true); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(keys.Key, want.Keys.RemoteMasterKey) || !bytes.Equal(keys.Salt, want.Keys.RemoteMasterSalt) {
				t.Fatalf("keys %x/%x, the client's exporter gives %x/%x", keys.Key, keys.Salt, want.Keys.RemoteMasterKey, want.Keys.RemoteMasterSalt)
			}
			// And the client's own keys are the remote ones recovered.
			if !bytes.Equal(keys.RemoteKey, want.Keys.LocalMasterKey) || !bytes.Equal(keys.RemoteSalt, want.Keys.LocalMasterSalt) {
				t.Fatalf("remote keys %x/%x, the client's exporter gives %x/%x", keys.RemoteKey, keys.RemoteSalt, want.Keys.LocalMasterKey, want.Keys.LocalMasterSalt)
			}
			if bytes.Equal(keys.RemoteKey, keys.Key) {
				t.Fatal("both directions have the same key")
			}
			// And a packet the server side encrypts with them is one the
			// client decrypts.
			enc, err := srtp.CreateContext(keys.Key, keys.Salt, keys.Profile)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := srtp.CreateContext(want.Keys.RemoteMasterKey, want.Keys.RemoteMasterSalt, want.Profile)
			if err != nil {
				t.Fatal(err)
			}
			pkt := []byte{0x80, 96, 0x12, 0x34, 0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe, 'h', 'e', 'l', 'l', 'o'}
			ct, err := enc.EncryptRTP(nil, pkt, nil)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := dec.DecryptRTP(nil, ct, nil)
			if err != nil || !bytes.Equal(pt, pkt) {
				t.Fatalf("decrypted %x, %v; want %x", pt, err, pkt)
			}
		})
	}
}

// TestKeysNotReady checks that nothing is derived from half a handshake:
// a client side (no ServerHello sent) or a key log alone.
func TestKeysNotReady(t *testing.T) {
	var c Collector
	if _, err := c.Keys(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("empty: %v", err)
	}
	line := "CLIENT_RANDOM " + string(bytes.Repeat([]byte("ab"), 32)) + " " + string(bytes.Repeat([]byte("cd"), 48)) + "\n"
	// Written in two pieces, as a writer may be.
	if _, err := c.Write([]byte(line[:20])); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(line[20:])); err != nil {
		t.Fatal(err)
	}
	if !c.haveSecret || c.clientRandom[0] != 0xab || c.master[47] != 0xcd {
		t.Fatalf("key log line not read: %v %x", c.haveSecret, c.clientRandom)
	}
	if _, err := c.Keys(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("key log without a ServerHello: %v", err)
	}
	// Lines of other kinds and malformed ones are ignored.
	var d Collector
	for _, l := range []string{"SERVER_HANDSHAKE_TRAFFIC_SECRET aa bb\n", "CLIENT_RANDOM zz yy\n", "CLIENT_RANDOM ab cd\n"} {
		if _, err := d.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if d.haveSecret {
		t.Fatal("a malformed line was taken for the secret")
	}
}

func TestUnknownSuite(t *testing.T) {
	if _, err := prfHash(0x1301); err == nil {
		t.Fatal("a TLS 1.3 suite was given a DTLS 1.2 PRF")
	}
}
