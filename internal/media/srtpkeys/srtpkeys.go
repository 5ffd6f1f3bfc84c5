// Package srtpkeys recovers the SRTP keys of a DTLS-SRTP connection
// (RFC 5764) negotiated by Pion, for a sender that encrypts and sends its
// own packets and a receiver that decrypts its own.
//
// Pion keeps the DTLS connection, and with it the RFC 5705 exporter the
// keys come from, to itself. What its setting engine does hand out is
// everything the exporter is made of: the ServerHello a server sends (its
// random, the cipher suite, the SRTP profile chosen) through a message
// hook, and the client random with the master secret through the key log
// writer. A Collector is both; Keys runs the exporter's one PRF call, the
// same one pion/dtls makes. Only the server side of the handshake sees
// both randoms this way, so a connection whose peer took the DTLS server
// role has no keys here and stays on Pion's own path.
//
// The secret never leaves the process: the key log goes to the Collector,
// not to a file.
package srtpkeys

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// exporterLabel is RFC 5764 §4.2's label for the SRTP keying material.
const exporterLabel = "EXTRACTOR-dtls_srtp"

// ErrNotReady is returned by Keys before the handshake has shown
// everything the keys are made of, or when this side was not the DTLS
// server.
var ErrNotReady = errors.New("srtpkeys: handshake not seen from the server side")

// Keys are what a sender needs to encrypt SRTP for its peer, and a
// receiver to decrypt the peer's.
type Keys struct {
	Profile srtp.ProtectionProfile
	// Key and Salt are the server's write key and salt: what the local
	// (server) side encrypts its SRTP with.
	Key, Salt []byte
	// RemoteKey and RemoteSalt are the client's: what the peer encrypts
	// its SRTP with, for a receiver that opens the packets itself.
	RemoteKey, RemoteSalt []byte
}

// Collector gathers the handshake's parts for one connection. Its methods
// may be called from Pion's handshake goroutine while Keys is called from
// another.
type Collector struct {
	mu           sync.Mutex
	haveServer   bool
	serverRandom [32]byte
	suite        uint16
	profile      dtls.SRTPProtectionProfile
	haveSecret   bool
	clientRandom [32]byte
	master       []byte
	partial      []byte // a key log line not yet ended
}

// ServerHello is the setting engine's DTLS ServerHello hook: it notes the
// message and sends it unchanged.
func (c *Collector) ServerHello(m handshake.MessageServerHello) handshake.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serverRandom = m.Random.MarshalFixed()
	c.haveServer = m.CipherSuiteID != nil
	if m.CipherSuiteID != nil {
		c.suite = *m.CipherSuiteID
	}
	c.profile = 0
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			c.profile = dtls.SRTPProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	return &m
}

// Write is the setting engine's DTLS key log writer: it reads the NSS key
// log line "CLIENT_RANDOM <client random> <master secret>" (hex), the one
// a DTLS 1.2 handshake writes. Other lines are ignored.
func (c *Collector) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.line(c.partial[:i])
		c.partial = c.partial[i+1:]
	}
	if len(c.partial) > 1024 {
		c.partial = c.partial[:0] // not a key log
	}
	return len(p), nil
}

// line reads one key log line; c.mu is held.
func (c *Collector) line(l []byte) {
	f := bytes.Fields(l)
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
		return
	}
	cr, err1 := hex.DecodeString(string(f[1]))
	ms, err2 := hex.DecodeString(string(f[2]))
	if err1 != nil || err2 != nil || len(cr) != 32 || len(ms) != 48 {
		return
	}
	copy(c.clientRandom[:], cr)
	c.master = ms
	c.haveSecret = true
}

// Keys returns the local side's SRTP key and salt, once the handshake has
// shown its ServerHello and its master secret.
func (c *Collector) Keys() (Keys, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.haveServer || !c.haveSecret {
		return Keys{}, ErrNotReady
	}
	hash, err := prfHash(c.suite)
	if err != nil {
		return Keys{}, err
	}
	if c.profile == 0 {
		return Keys{}, errors.New("srtpkeys: no SRTP profile in the ServerHello")
	}
	cfg := srtp.Config{Profile: srtp.ProtectionProfile(c.profile)}
	seed := make([]byte, 0, len(exporterLabel)+64)
	seed = append(append(append(seed, exporterLabel...), c.clientRandom[:]...), c.serverRandom[:]...)
	ex := exporter{master: c.master, hash: hash, seed: seed}
	if err := cfg.ExtractSessionKeysFromDTLS(&ex, false); err != nil {
		return Keys{}, fmt.Errorf("srtpkeys: %w", err)
	}
	return Keys{
		Profile: cfg.Profile,
		Key:     cfg.Keys.LocalMasterKey, Salt: cfg.Keys.LocalMasterSalt,
		RemoteKey: cfg.Keys.RemoteMasterKey, RemoteSalt: cfg.Keys.RemoteMasterSalt,
	}, nil
}

// prfHash returns the hash of a DTLS 1.2 cipher suite's PRF: SHA-384 for
// the suites named so, SHA-256 for every other suite pion/dtls
// implements. An unknown suite gives an error rather than a guess: wrong
// keys would look like a receiver that decodes nothing.
func prfHash(suite uint16) (prf.HashFunc, error) {
	switch dtls.CipherSuiteID(suite) {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384, nil
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
		dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, dtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return sha256.New, nil
	}
	return nil, fmt.Errorf("srtpkeys: cipher suite %#04x not known", suite)
}

// exporter is RFC 5705's exporter for the server side, with no context:
// PRF(master secret, label + client random + server random).
type exporter struct {
	master []byte
	hash   prf.HashFunc
	seed   []byte
}

func (e *exporter) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	if label != exporterLabel || len(context) != 0 {
		return nil, errors.New("srtpkeys: only the DTLS-SRTP exporter is supported")
	}
	return prf.PHash(e.master, e.seed, length, e.hash)
}
