package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/liveclass/liveclass/internal/apperr"
)

// Password length limits, in characters. The upper bound keeps a single
// request from making the server hash megabytes.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// HashParams are argon2id's cost parameters.
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultHashParams returns one of OWASP's equivalent argon2id settings
// (m=12 MiB, t=3, p=1). They cost about 20 ms per hash on this project's
// reference machine (2 cores; BenchmarkHashPassword): slow enough to make a
// stolen hash expensive to guess, fast enough that a sign-in does not feel
// slow. OWASP's m=19 MiB, t=2 costs the same time here (24–33 ms) but more
// memory per concurrent sign-in.
func DefaultHashParams() HashParams {
	return HashParams{Memory: 12 * 1024, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// errBadHash means a stored hash could not be parsed: a corrupted row, not
// a wrong password, so it is reported as an internal error.
var errBadHash = errors.New("auth: malformed password hash")

// ValidatePassword checks the length rule and names the field at fault.
func ValidatePassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return apperr.Field("password", "must be valid UTF-8 text")
	case n < MinPasswordLen:
		return apperr.Field("password", "must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return apperr.Field("password", "must be at most %d characters", MaxPasswordLen)
	}
	return nil
}

// HashPassword returns pw hashed with argon2id in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so that the parameters travel
// with the hash and can be raised later without breaking old hashes.
func HashPassword(pw string, p HashParams) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches the encoded hash, comparing in
// constant time. A malformed hash is an error, not a mismatch.
func VerifyPassword(pw, encoded string) (bool, error) {
	p, salt, want, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func parseHash(encoded string) (HashParams, []byte, []byte, error) {
	var p HashParams
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errBadHash
	}
	// Bounds keep a tampered row from making one verification take
	// gigabytes or minutes.
	if p.Memory < 8 || p.Memory > 1<<21 || p.Time < 1 || p.Time > 100 || p.Threads < 1 {
		return p, nil, nil, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, errBadHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return p, nil, nil, errBadHash
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
