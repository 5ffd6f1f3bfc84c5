// Package keepalive pings a WebSocket until its connection is done, so that
// a peer that vanished without closing (a laptop lid shut, a network
// dropped) is found within one period and its place freed, not kept until
// TCP gives up. The classroom's signalling and the broadcast audience both
// keep their connections this way; it imports no other liveclass package.
package keepalive

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// Run pings ws every period until done is closed, and returns nil then. A
// ping that is not answered within one period ends it with the ping's
// error, and the caller closes the connection. The peer answers only
// while someone reads ws, so the caller must keep a reader running.
func Run(ws *websocket.Conn, period time.Duration, done <-chan struct{}) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), period)
			err := ws.Ping(ctx)
			cancel()
			if err != nil {
				return err
			}
		}
	}
}
