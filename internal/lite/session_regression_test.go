package lite

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/wire"
)

// Regression tests for what FuzzSession found; each has an input in
// testdata/fuzz/FuzzSession too.

// waitFake waits until ready (called with c.mu held) holds.
func waitFake(t *testing.T, c *fakeConn, ready func() bool) {
	t.Helper()
	timeout := time.NewTimer(iterTimeout)
	defer timeout.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for !ready() {
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-timeout.C:
			c.mu.Lock()
			t.Fatalf("timed out: %s", c.describeLocked())
		}
		c.mu.Lock()
	}
}

func testConfig() engine.Config {
	return engine.Config{Logger: slog.New(slog.DiscardHandler)}
}

// A setup stream finished before SETUP was an io.EOF that wrapped no model
// error (input 8727b16d337d7b81).
func TestSetupStreamEndsEarly(t *testing.T) {
	for _, client := range []bool{false, true} {
		rec := fuzzRecord{kind: recBidi, end: endFin}
		if client {
			rec = fuzzRecord{kind: recReply, end: endFin, target: ClientSetupType}
		}
		c := newFakeConn([]fuzzRecord{rec})
		_, err := ExchangeSetup(context.Background(), c, []uint64{uint64(Lite02)}, client)
		if !errors.Is(err, moq.ErrProtocolViolation) {
			t.Errorf("client=%v: ExchangeSetup failed with %v, want moq.ErrProtocolViolation", client, err)
		}
		_ = c.CloseWithError(0, "")
	}
}

// When the peer closed a lite-01/02 session cleanly, the session stream
// could see the close first and end the session with engine.ErrPeerClosed
// instead of cleanly (input afdacae20b89ba8f).
func TestPeerCloseWithSessionStream(t *testing.T) {
	for range 20 {
		var s fuzzSeed
		s.tb, s.v = t, Lite02
		c := newFakeConn([]fuzzRecord{{kind: recBidi, end: endHold, data: s.clientSetup(Lite02)}, {kind: recClose}})
		setup, err := ExchangeSetup(context.Background(), c, []uint64{uint64(Lite02)}, false)
		if err != nil {
			t.Fatal(err)
		}
		c.startSession()
		sess := New(c, Lite02, testConfig(), setup)
		// The session stream waits for SESSION_INFO when the peer closes.
		waitFake(t, c, func() bool { return c.idleLocked(true) })
		c.peerClose(0)
		<-sess.Done()
		if err := sess.Err(); err != nil {
			t.Fatalf("a clean close by the peer ended the session with %v", err)
		}
		_ = sess.Shutdown(context.Background())
	}
}

// A subscribe stream the peer finished before SUBSCRIBE_OK failed the
// subscription with io.EOF, which aborted the track with io.EOF: its
// consumers took that for the track's end (input bd1c5567f4a3072d).
func TestSubscribeStreamEndsBeforeOK(t *testing.T) {
	fin := fuzzRecord{kind: recReply, end: endFin, target: ControlSubscribe}
	c := newFakeConn([]fuzzRecord{fin, fin})
	c.startSession()
	s := New(c, Lite03, testConfig(), nil)
	defer func() { _ = s.Shutdown(context.Background()) }()
	_, err := s.Subscribe(context.Background(), "b", "t", engine.SubscribeOptions{})
	if !errors.Is(err, moq.ErrProtocolViolation) {
		t.Errorf("Subscribe failed with %v, want moq.ErrProtocolViolation", err)
	}

	b, release := s.ConsumeBroadcast("b")
	defer release()
	tc, err := b.SubscribeTrack(moq.Track{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), iterTimeout)
	defer cancel()
	if _, err := tc.NextGroup(ctx); errors.Is(err, io.EOF) || !errors.Is(err, moq.ErrProtocolViolation) {
		t.Errorf("track ended with %v, want moq.ErrProtocolViolation", err)
	}
}

// An oversized message on a probe stream the peer opened, or on our
// announce stream, left the stream unread and uncancelled while the session
// went on: its data would hold connection credit (inputs
// 581dbdf0d4a192ae, probe_oversized, announce_oversized).
func TestOversizedMessageStopsStream(t *testing.T) {
	huge := wire.AppendVarint(nil, maxControlMessage+1)
	for _, tc := range []struct {
		name string
		rec  fuzzRecord
	}{
		{"probe", fuzzRecord{kind: recBidi, end: endHold, data: append([]byte{byte(ControlProbe)}, huge...)}},
		{"announce", fuzzRecord{kind: recReply, end: endHold, target: ControlAnnounce, data: huge}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeConn([]fuzzRecord{tc.rec})
			c.startSession()
			cfg := testConfig()
			cfg.Consume = moq.NewOrigin()
			s := New(c, Lite04, cfg, nil)
			// The stream that carried the message was cancelled.
			waitFake(t, c, func() bool {
				return slices.ContainsFunc(c.streams, func(st *fakeStream) bool { return st.stopped && len(st.script.data) > 0 })
			})
			select {
			case <-s.Done():
				t.Errorf("session ended with %v", s.Err())
			default:
			}
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A subscription the peer reset after SUBSCRIBE_OK ended with the reset but
// left our side of the subscribe stream open until the session ended.
func TestSubscribeResetAbandonsStream(t *testing.T) {
	ok, err := AppendSubscribeResponse(nil, &SubscribeOk{}, nil, Lite04)
	if err != nil {
		t.Fatal(err)
	}
	c := newFakeConn([]fuzzRecord{{kind: recReply, end: endReset, code: ErrorCode(moq.ErrNotFound), target: ControlSubscribe, data: ok}})
	c.startSession()
	s := New(c, Lite04, testConfig(), nil)
	defer func() { _ = s.Shutdown(context.Background()) }()
	sub, err := s.Subscribe(context.Background(), "b", "t", engine.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	<-sub.Done()
	if !errors.Is(sub.Err(), moq.ErrNotFound) {
		t.Errorf("subscription ended with %v, want the peer's ErrNotFound", sub.Err())
	}
	waitFake(t, c, func() bool {
		return slices.ContainsFunc(c.streams, func(st *fakeStream) bool { return !st.peer && st.send && st.reset })
	})
}
