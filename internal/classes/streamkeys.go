package classes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// Stream keys let an encoder publish a broadcast (IVS) class over WHIP:
// OBS sends one as its Bearer token. They are managed by the people who
// run the class (its instructor and admins), for broadcast classes only.
// The secret is shown once, when the key is created; the store keeps its
// SHA-256 and its first characters, so a leaked database cannot publish.

// StreamKeyPrefixLen is how many of the secret's characters are kept in
// clear, for a person to recognise a key.
const StreamKeyPrefixLen = 8

// MaxActiveStreamKeys bounds the keys of one class that are not revoked:
// rotation creates a key and revokes the old one, and no class needs more
// than a few encoders' keys at once.
const MaxActiveStreamKeys = 20

// WHIPPath is where a broadcast class's stream is published, followed by
// the class ID (docs/protocol.md).
const WHIPPath = "/whip/"

// NewStreamKey is a key just created: the only time its secret is known.
type NewStreamKey struct {
	Key store.StreamKey
	// Secret is the key itself, the Bearer token of a WHIP publish.
	Secret string
	// IngestURL is the class's WHIP endpoint, absolute.
	IngestURL string
}

// HashStreamKey is the hash a secret is stored and looked up by.
func HashStreamKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// IngestURL returns the absolute WHIP endpoint of a class.
func (s *Service) IngestURL(class store.ClassID) string {
	return s.opt.PublicURL + WHIPPath + string(class)
}

// streamClass returns class id if a may manage its stream keys: its
// instructor or an admin, and only for a broadcast class.
func (s *Service) streamClass(ctx context.Context, a auth.Actor, id store.ClassID) (store.LiveClass, error) {
	if err := signedIn(a); err != nil {
		return store.LiveClass{}, err
	}
	c, err := s.hostedClass(ctx, a, id, "stream keys")
	if err != nil {
		return store.LiveClass{}, err
	}
	if c.Service != store.ServiceIVS {
		return store.LiveClass{}, apperr.Field("liveClassId", "stream keys are for broadcast (IVS) classes; this class is interactive")
	}
	return c, nil
}

// CreateStreamKey makes a new stream key for a broadcast class and returns
// its secret and the ingest URL, which are never shown again. The class's
// other keys stay valid: revoke the old one to rotate.
func (s *Service) CreateStreamKey(ctx context.Context, a auth.Actor, class store.ClassID) (NewStreamKey, error) {
	c, err := s.streamClass(ctx, a, class)
	if err != nil {
		return NewStreamKey{}, err
	}
	switch c.Status {
	case store.StatusEnded, store.StatusCancelled:
		return NewStreamKey{}, apperr.New(apperr.Conflict, "the class is %s; it will not be streamed again", c.Status)
	}
	keys, err := s.st.ListStreamKeys(ctx, c.ID)
	if err != nil {
		return NewStreamKey{}, err
	}
	active := 0
	for _, k := range keys {
		if k.RevokedAt == nil {
			active++
		}
	}
	if active >= MaxActiveStreamKeys {
		return NewStreamKey{}, apperr.New(apperr.Conflict, "the class has %d stream keys already; revoke one first", active)
	}
	// 130 random bits in base32: unguessable, and safe to paste anywhere
	// (no characters a URL, a shell or a form would change).
	secret := rand.Text()
	k := store.StreamKey{
		ID:        store.StreamKeyID(s.opt.NewID()),
		ClassID:   c.ID,
		Hash:      HashStreamKey(secret),
		Prefix:    secret[:StreamKeyPrefixLen],
		CreatedBy: a.UserID,
		CreatedAt: s.opt.Now(),
	}
	if err := s.st.CreateStreamKey(ctx, &k); err != nil {
		return NewStreamKey{}, err
	}
	return NewStreamKey{Key: k, Secret: secret, IngestURL: s.IngestURL(c.ID)}, nil
}

// RevokeStreamKey revokes a key: an encoder can no longer start a publish
// with it (one already connected is not cut off; end the class or the
// publish for that). Revoking a revoked key changes nothing.
func (s *Service) RevokeStreamKey(ctx context.Context, a auth.Actor, id store.StreamKeyID) (store.StreamKey, error) {
	if err := signedIn(a); err != nil {
		return store.StreamKey{}, err
	}
	k, err := s.st.StreamKeyByID(ctx, id)
	if err != nil {
		return store.StreamKey{}, err
	}
	if _, err := s.streamClass(ctx, a, k.ClassID); err != nil {
		return store.StreamKey{}, err
	}
	if err := s.st.RevokeStreamKey(ctx, id, s.opt.Now()); err != nil {
		return store.StreamKey{}, err
	}
	return s.st.StreamKeyByID(ctx, id)
}

// StreamKeys lists a class's keys, revoked ones too, oldest first; the
// secrets are not among them.
func (s *Service) StreamKeys(ctx context.Context, a auth.Actor, class store.ClassID) ([]store.StreamKey, error) {
	c, err := s.streamClass(ctx, a, class)
	if err != nil {
		return nil, err
	}
	return s.st.ListStreamKeys(ctx, c.ID)
}

// CheckStreamKey reports whether secret is a valid (not revoked) stream key
// of class: nil, or Unauthenticated with the same message whatever was
// wrong, so that the answer tells a guesser nothing.
func (s *Service) CheckStreamKey(ctx context.Context, class store.ClassID, secret string) error {
	refused := apperr.New(apperr.Unauthenticated, "the stream key is wrong or revoked")
	if secret == "" {
		return apperr.New(apperr.Unauthenticated, "a stream key is required")
	}
	k, err := s.st.StreamKeyByHash(ctx, HashStreamKey(secret))
	switch {
	case apperr.Is(err, apperr.NotFound):
		return refused
	case err != nil:
		return err
	}
	// The hash matched, so the class is what is left to check; compared in
	// constant time anyway, as it costs nothing.
	if subtle.ConstantTimeCompare([]byte(k.ClassID), []byte(class)) != 1 || k.RevokedAt != nil {
		return refused
	}
	return nil
}
