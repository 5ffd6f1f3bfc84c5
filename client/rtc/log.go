package rtc

import (
	"context"
	"fmt"
	"sync"
)

// Log keeps the server messages it is given, for callers that wait for
// one (tests, scripts). Its Record method is an Options.OnMessage. The
// zero value is ready to use; it grows without bound, so long-running
// participants should use their own OnMessage instead.
type Log struct {
	mu      sync.Mutex
	msgs    []Message
	changed chan struct{} // closed and replaced on every message
}

// Record appends m; it has the shape of Options.OnMessage.
func (l *Log) Record(_ *Participant, m Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, m)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// Wait returns the first message so far or to come that match accepts
// (any message when match is nil).
func (l *Log) Wait(ctx context.Context, match func(Message) bool) (Message, error) {
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.msgs); seen++ {
			if m := l.msgs[seen]; match == nil || match(m) {
				l.mu.Unlock()
				return m, nil
			}
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("waiting for a message: %w", ctx.Err())
		}
	}
}

// Count returns how many messages match accepts.
func (l *Log) Count(match func(Message) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if match == nil || match(m) {
			n++
		}
	}
	return n
}

// Last returns the latest message that match accepts.
func (l *Log) Last(match func(Message) bool) (Message, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.msgs) - 1; i >= 0; i-- {
		if match == nil || match(l.msgs[i]) {
			return l.msgs[i], true
		}
	}
	return Message{}, false
}

// OfType returns a match of the messages of type typ.
func OfType(typ string) func(Message) bool {
	return func(m Message) bool { return m.Type == typ }
}
