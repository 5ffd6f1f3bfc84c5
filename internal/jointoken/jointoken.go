// Package jointoken signs and verifies the short-lived tokens with which a
// participant joins a class's media room (the job of the guide's
// generateLiveClassToken and Chime's attendee join token). The control
// plane signs them; the media plane verifies them without a database call.
package jointoken

import (
	"errors"
	"fmt"
	"time"

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
}

// NewSigner returns a signer with key, which must be at least 32 bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("jointoken: key is %d bytes, want at least 32", len(key))
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

type jwtClaims struct {
	jwt.RegisteredClaims
	Class   string `json:"cls"`
	Name    string `json:"name"`
	Role    Role   `json:"role"`
	Service string `json:"svc"`
}

// Sign returns the signed token for c.
func (s *Signer) Sign(c Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.UserID,
			Audience:  jwt.ClaimStrings{audience},
			ID:        c.ID,
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
		Class:   c.ClassID,
		Name:    c.Name,
		Role:    c.Role,
		Service: c.Service,
	})
	return t.SignedString(s.key)
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
