package store

import (
	"context"
	"time"
)

// StreamKeyID names a stream key.
type StreamKeyID string

// StreamKey lets an encoder (OBS, the presenter page) publish a broadcast
// class's stream over WHIP. Only the SHA-256 of the secret is stored, so a
// leaked database cannot publish; Prefix (the secret's first characters)
// lets a person recognise which key is which.
type StreamKey struct {
	ID        StreamKeyID
	ClassID   ClassID
	Hash      []byte // SHA-256 of the secret
	Prefix    string // the secret's first 8 characters
	CreatedBy UserID // empty once that user is deleted
	CreatedAt time.Time
	RevokedAt *time.Time // nil while the key is valid
}

// StreamKeys stores stream keys.
type StreamKeys interface {
	// CreateStreamKey stores k, filling a missing ID and CreatedAt: Invalid
	// when the class or user does not exist, Conflict when the hash is
	// already stored.
	CreateStreamKey(ctx context.Context, k *StreamKey) error
	// StreamKeyByHash returns the key with that hash, revoked or not (the
	// caller decides); NotFound when none.
	StreamKeyByHash(ctx context.Context, hash []byte) (StreamKey, error)
	// StreamKeyByID returns one key; NotFound when none.
	StreamKeyByID(ctx context.Context, id StreamKeyID) (StreamKey, error)
	// ListStreamKeys returns a class's keys, revoked ones too, oldest first.
	ListStreamKeys(ctx context.Context, class ClassID) ([]StreamKey, error)
	// RevokeStreamKey marks the key revoked at at; revoking it again keeps
	// the first time. NotFound when there is no such key.
	RevokeStreamKey(ctx context.Context, id StreamKeyID, at time.Time) error
}
