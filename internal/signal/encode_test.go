package signal

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
)

func TestEncoderSharesEqualEvents(t *testing.T) {
	var en encoder
	p := room.Participant{ID: "u1", Name: "Ada", Role: jointoken.RoleAttendee, Hand: true, JoinedAt: time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)}
	a, err := en.encode(room.ParticipantUpdated{Type: room.TypeParticipantUpdated, Participant: p})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := en.encode(room.ParticipantUpdated{Type: room.TypeParticipantUpdated, Participant: p})
	if &a[0] != &b[0] {
		t.Fatal("an equal event was encoded again")
	}
	p.Hand = false
	c, _ := en.encode(room.ParticipantUpdated{Type: room.TypeParticipantUpdated, Participant: p})
	var got room.ParticipantUpdated
	if err := json.Unmarshal(c, &got); err != nil || got.Participant.Hand {
		t.Fatalf("changed event encoded as %s (%v)", c, err)
	}
	// Events with slices cannot be compared; they are encoded each time.
	h1, _ := en.encode(room.Hands{Type: room.TypeHands, Queue: []room.ParticipantID{"u1"}})
	h2, _ := en.encode(room.Hands{Type: room.TypeHands, Queue: []room.ParticipantID{"u2"}})
	if string(h1) == string(h2) {
		t.Fatalf("different hand queues encoded alike: %s", h1)
	}
	// A different type with no fields to tell it apart is not confused.
	e1, _ := en.encode(room.Ended{Type: room.TypeEnded})
	e2, _ := en.encode(room.Replaced{Type: room.TypeReplaced})
	if string(e1) == string(e2) {
		t.Fatalf("ended and replaced encoded alike: %s", e1)
	}
}

// benchDeliver hands one participant.updated to a class of 50 the way the
// room does, through each connection's Deliver.
func benchDeliver(b *testing.B, shared bool) {
	log := slog.New(slog.DiscardHandler)
	conns := make([]*conn, 50)
	var one encoder
	for i := range conns {
		en := &one
		if !shared {
			en = &encoder{}
		}
		conns[i] = &conn{log: log, out: make(chan outMsg, 1), started: true, enc: en}
	}
	p := room.Participant{ID: "u1", Name: "Ada", Role: jointoken.RoleAttendee, JoinedAt: time.Now()}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Hand = i%2 == 0 // a new event each round
		// The room boxes an event once and hands the same value to every
		// sink.
		var e room.Event = room.ParticipantUpdated{Type: room.TypeParticipantUpdated, Participant: p}
		for _, c := range conns {
			c.Deliver(e)
			<-c.out
		}
	}
}

// BenchmarkDeliver50 is the signalling cost of one room event in a class
// of 50; BenchmarkDeliver50PerConnection is the baseline of encoding it
// for each recipient.
func BenchmarkDeliver50(b *testing.B)              { benchDeliver(b, true) }
func BenchmarkDeliver50PerConnection(b *testing.B) { benchDeliver(b, false) }
