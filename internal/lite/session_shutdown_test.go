package lite

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
)

// TestSubscribeDuringShutdown checks that a Subscribe waiting for
// SUBSCRIBE_OK when the session shuts down fails with a model error, not
// with the reset of its own stream.
func TestSubscribeDuringShutdown(t *testing.T) {
	for _, v := range []Version{Lite02, Lite03, Lite04} {
		t.Run(v.String(), func(t *testing.T) {
			c := newFakeConn(nil) // the peer never answers
			c.startSession()
			s := New(c, v, engine.Config{Logger: slog.New(slog.DiscardHandler)}, nil)
			res := make(chan error, 1)
			go func() {
				_, err := s.Subscribe(context.Background(), "b", "t", engine.SubscribeOptions{})
				res <- err
			}()
			// Wait until the SUBSCRIBE went out and the reply is awaited.
			c.mu.Lock()
			for !c.boundLocked() || c.openedLocked() == 0 {
				ch := c.changed
				c.mu.Unlock()
				<-ch
				c.mu.Lock()
			}
			c.mu.Unlock()
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := <-res; !errors.Is(err, moq.ErrClosed) {
				t.Fatalf("Subscribe failed with %v (%T), want moq.ErrClosed", err, err)
			}
		})
	}
}
