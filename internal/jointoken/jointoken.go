// Package jointoken signs and verifies the short-lived tokens with which a
// participant joins a class's media room (the job of the guide's
// generateLiveClassToken and Chime's attendee join token). The control
// plane signs them; the media plane verifies them without a database call.
package jointoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Role is the participant's role inside the room.
type Role string

// Room roles: the instructor and admins host, everyone else attends.
const (
	RoleHost     Role = "HOST"
	RoleAttendee Role = "ATTENDEE"
)

// Claims is what a join token says.
type Claims struct {
	ClassID string
	UserID  string
	Name    string
	Role    Role
	Service string // CHIME or IVS
	// ID is unique per token, so that a removed participant's token can be
	// refused by the room without refusing the user's next one.
	ID        string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// audience keeps join tokens from being accepted where a session token is
// expected, and the other way round.
const audience = "liveclass-join"

// Signer signs and verifies join tokens with one HMAC key.
type Signer struct {
	key []byte
	// macs holds keyed HMAC-SHA256 states: keying one costs two SHA-256
	// blocks and several allocations, and a grant needs one per token.
	macs sync.Pool
}

// NewSigner returns a signer with key, which must be at least 32 bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("jointoken: key is %d bytes, want at least 32", len(key))
	}
	s := &Signer{key: append([]byte(nil), key...)}
	s.macs.New = func() any { return hmac.New(sha256.New, s.key) }
	return s, nil
}

type jwtClaims struct {
	jwt.RegisteredClaims
	Class   string `json:"cls"`
	Name    string `json:"name"`
	Role    Role   `json:"role"`
	Service string `json:"svc"`
}

// header is the base64url encoding of {"alg":"HS256","typ":"JWT"}, the
// header of every join token.
const header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// Sign returns the signed token for c: an HS256 JWT, byte for byte the one
// golang-jwt makes of jwtClaims (the tests hold it to that), written
// directly because the library's reflection-driven JSON, header map and
// HMAC keying cost more than the rest of a token grant's own work. The
// error is always nil; it is kept for signers that can fail.
func (s *Signer) Sign(c Claims) (string, error) {
	var scratch [512]byte
	payload := appendPayload(scratch[:0], c)
	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(sha256.Size))
	out = append(out, header...)
	out = append(out, '.')
	out = enc.AppendEncode(out, payload)

	mac := s.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(out)
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	s.macs.Put(mac)

	out = append(out, '.')
	out = enc.AppendEncode(out, sum[:])
	return string(out), nil
}

// appendPayload appends the JSON of c in the order and shape that
// encoding/json gives jwtClaims: registered claims first (empty sub and
// jti left out, aud as an array, times as whole seconds), then cls, name,
// role and svc.
func appendPayload(b []byte, c Claims) []byte {
	b = append(b, '{')
	if c.UserID != "" {
		b = append(b, `"sub":`...)
		b = appendString(b, c.UserID)
		b = append(b, ',')
	}
	b = append(b, `"aud":["`+audience+`"],"exp":`...)
	b = strconv.AppendInt(b, c.ExpiresAt.Truncate(time.Second).Unix(), 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.IssuedAt.Truncate(time.Second).Unix(), 10)
	if c.ID != "" {
		b = append(b, `,"jti":`...)
		b = appendString(b, c.ID)
	}
	b = append(b, `,"cls":`...)
	b = appendString(b, c.ClassID)
	b = append(b, `,"name":`...)
	b = appendString(b, c.Name)
	b = append(b, `,"role":`...)
	b = appendString(b, string(c.Role))
	b = append(b, `,"svc":`...)
	b = appendString(b, c.Service)
	return append(b, '}')
}

// appendString appends s as a JSON string escaped as encoding/json does
// (HTML characters, U+2028 and U+2029 escaped; invalid UTF-8 replaced), so
// that a user's name comes out the same as it did through the library.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ErrInvalid is returned for every token that does not verify: tampered,
// expired, malformed or signed with another key.
var ErrInvalid = errors.New("jointoken: invalid or expired token")

// Verify checks the signature and expiry of token at time now and returns
// its claims. Callers still check that the class is the one being joined.
func (s *Signer) Verify(token string, now time.Time) (Claims, error) {
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(token, &jc, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if jc.Class == "" || jc.Subject == "" || (jc.Role != RoleHost && jc.Role != RoleAttendee) {
		return Claims{}, fmt.Errorf("%w: missing claims", ErrInvalid)
	}
	c := Claims{
		ClassID: jc.Class,
		UserID:  jc.Subject,
		Name:    jc.Name,
		Role:    jc.Role,
		Service: jc.Service,
		ID:      jc.ID,
	}
	if jc.IssuedAt != nil {
		c.IssuedAt = jc.IssuedAt.Time
	}
	c.ExpiresAt = jc.ExpiresAt.Time
	return c, nil
}
