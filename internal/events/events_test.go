package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/events"
	"github.com/liveclass/liveclass/internal/store"
)

func classEvent(title string) classes.Event {
	return classes.Event{Kind: classes.Updated, Class: &store.LiveClass{Title: title}}
}

func TestEverySubscriberGetsEachEvent(t *testing.T) {
	b := events.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, c := b.Subscribe(ctx, 4), b.Subscribe(ctx, 4)
	b.Publish(classEvent("one"))
	b.Publish(classEvent("two"))
	for _, ch := range []<-chan classes.Event{a, c} {
		for _, want := range []string{"one", "two"} {
			select {
			case e := <-ch:
				if e.Class.Title != want {
					t.Fatalf("got %q, want %q", e.Class.Title, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("event %q never arrived", want)
			}
		}
	}
}

func TestSlowSubscriberNeverBlocksThePublisher(t *testing.T) {
	b := events.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := b.Subscribe(ctx, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			b.Publish(classEvent("x")) // nobody reads slow: must not block
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	if n := len(slow); n != 1 {
		t.Fatalf("slow subscriber holds %d events, want its buffer of 1", n)
	}
}

func TestSubscriptionEndsWithItsContext(t *testing.T) {
	b := events.New()
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.Subscribe(ctx, 1)
	if b.Subscribers() != 1 {
		t.Fatalf("Subscribers = %d, want 1", b.Subscribers())
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for b.Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the subscription outlived its context")
		}
		time.Sleep(time.Millisecond)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after the context ended")
	}
	b.Publish(classEvent("after")) // no subscriber left: must not panic on a closed channel
}
