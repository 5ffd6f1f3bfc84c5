package audience

import (
	"fmt"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

// BenchmarkFanout measures queueing one chat message for 1,000 viewers:
// encoded once and shared (the hub), or encoded once per viewer (the
// baseline). Queues are emptied outside the timer every 100 messages.
func BenchmarkFanout(b *testing.B) {
	for _, perViewer := range []bool{false, true} {
		name := "shared"
		if perViewer {
			name = "per-viewer"
		}
		b.Run(fmt.Sprintf("%s/viewers=1000", name), func(b *testing.B) {
			h := &Hub{opt: Options{EncodePerViewer: perViewer, SendQueue: 128, SlowTimeout: time.Hour}}
			hl := newHall(h, "c")
			conns := make([]*conn, 1000)
			for i := range conns {
				c := &conn{h: h, hall: hl, out: make(chan []byte, 128), user: store.UserID(fmt.Sprint(i))}
				conns[i] = c
				hl.conns[c] = struct{}{}
			}
			m := chatOut{Type: TypeChat, ID: "0b6f2d4e-6a51-4e7e-9d55-0f7f1a2b3c4d", From: "u2", FromName: "Bo Lindqvist",
				Role: RoleViewer, Text: "Could you go over the last example once more, please?", SentAt: time.Now()}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				hl.toAllLocked(m)
				if i%100 == 99 {
					b.StopTimer()
					for _, c := range conns {
						for len(c.out) > 0 {
							<-c.out
						}
					}
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(conns)), "ns/delivery")
		})
	}
}
