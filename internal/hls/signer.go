package hls

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// Signer makes and checks the signed HLS URLs that authorize playback. A
// signature covers a class and an expiry; whoever holds the URL may watch
// that class until it expires, which is what lets a CDN serve segments
// without asking us who the viewer is.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer keyed with key, which should be at least 32
// random bytes kept secret by the server. A Signer with an empty key signs
// nothing that it would accept: Verify refuses every URL.
func NewSigner(key []byte) *Signer {
	return &Signer{key: append([]byte(nil), key...)}
}

// URL returns the signed playlist URL of class, a path with its query:
// "/hls/{class}/index.m3u8?exp=..&sig=..". The expiry is the end of the
// hour after the current one, so that it is at least an hour away and
// every viewer who asks within the same hour gets the same URL, which a
// CDN then caches once.
func (s *Signer) URL(class store.ClassID, now time.Time) string {
	exp := Expiry(now)
	return "/hls/" + url.PathEscape(string(class)) + "/index.m3u8?" + s.query(class, exp)
}

// Expiry is the expiry URL signs at now: the end of the next whole hour.
func Expiry(now time.Time) time.Time {
	return now.UTC().Truncate(time.Hour).Add(2 * time.Hour)
}

// query returns "exp=..&sig=..", the query every URL of class carries
// until exp.
func (s *Signer) query(class store.ClassID, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return "exp=" + e + "&sig=" + base64.RawURLEncoding.EncodeToString(s.mac(class, e))
}

// mac is the HMAC-SHA256 of class and exp, separated by a byte that
// neither contains, so that no other pair signs the same message.
func (s *Signer) mac(class store.ClassID, exp string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("liveclass-hls\x00"))
	m.Write([]byte(class))
	m.Write([]byte{0})
	m.Write([]byte(exp))
	return m.Sum(nil)
}

// Verify checks that sig signs class until exp (unix seconds, as URL
// writes it) and that exp has not passed at now. Every failure is an
// apperr.Forbidden error saying why.
func (s *Signer) Verify(class store.ClassID, exp string, sig string, now time.Time) error {
	if len(s.key) == 0 {
		return apperr.New(apperr.Forbidden, "HLS signing is not configured")
	}
	if exp == "" || sig == "" {
		return apperr.New(apperr.Forbidden, "the URL is not signed: exp and sig are required")
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || e <= 0 || strconv.FormatInt(e, 10) != exp {
		return apperr.New(apperr.Forbidden, "exp is not a unix time")
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return apperr.New(apperr.Forbidden, "sig is malformed")
	}
	if !hmac.Equal(got, s.mac(class, exp)) {
		return apperr.New(apperr.Forbidden, "sig does not sign this class and expiry")
	}
	if now.Unix() >= e {
		return apperr.New(apperr.Forbidden, "the signed URL expired at %s", time.Unix(e, 0).UTC().Format(time.RFC3339))
	}
	return nil
}
