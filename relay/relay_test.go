package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/relay/relaytest"
	"github.com/moqgo/moq/session"
	"github.com/moqgo/moq/transport/qmux"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testLogger() *slog.Logger { return relaytest.Logger() }

// startRelay runs a relay on a free loopback port for the test's lifetime.
func startRelay(t *testing.T) *relay.Relay {
	t.Helper()
	return startRelayWith(t, relay.Config{})
}

func startRelayWith(t *testing.T, cfg relay.Config) *relay.Relay {
	return relaytest.Start(t, cfg)
}

// relayURL is the URL of the relay for a transport: "quic", "webtransport"
// or "websocket".
func relayURL(r *relay.Relay, transport string) string {
	switch transport {
	case "quic":
		return "moqt://127.0.0.1:" + strconv.Itoa(r.Port())
	case "webtransport":
		return "https://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
	case "websocket":
		if r.TLS() {
			return "wss://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
		}
		return "ws://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
	}
	panic("unknown transport " + transport)
}

func dial(t *testing.T, ctx context.Context, r *relay.Relay, transport string, cfg session.Config) *session.Session {
	t.Helper()
	cfg.Fingerprint = r.Fingerprint()
	cfg.Logger = testLogger()
	sess, err := session.Dial(ctx, relayURL(r, transport), &cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", transport, err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}

// payload is the deterministic content of frame f of group g: a header naming
// it, then pseudo-random bytes of a size that varies from empty to 200 KiB.
func payload(g, f int) []byte {
	rng := rand.New(rand.NewPCG(uint64(g), uint64(f)))
	size := rng.IntN(2048)
	switch {
	case g%97 == 0 && f == 0:
		size = 200 << 10 // crosses the chunked-receive threshold
	case g%13 == 0 && f == 4:
		size = 0
	}
	b := fmt.Appendf(nil, "g%d/f%d:", g, f)
	for range size {
		b = append(b, byte(rng.Uint32()))
	}
	return b
}

const (
	e2eGroups = 1000
	e2eFrames = 5
)

// TestEndToEnd publishes 1000 groups of 5 frames through a relay to three
// subscribers and checks every byte, over each transport and mixed.
func TestEndToEnd(t *testing.T) {
	cases := []struct {
		name    string
		pub     string
		subs    [3]string
		framing []qmux.Framing // WebSocket framings the relay prefers
	}{
		{"quic", "quic", [3]string{"quic", "quic", "quic"}, nil},
		{"webtransport", "webtransport", [3]string{"webtransport", "webtransport", "webtransport"}, nil},
		{"websocket", "websocket", [3]string{"websocket", "websocket", "websocket"}, nil},
		{"websocket-legacy", "websocket", [3]string{"websocket", "websocket", "websocket"}, []qmux.Framing{qmux.WebTransport}},
		{"mixed", "quic", [3]string{"webtransport", "websocket", "quic"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			r := startRelayWith(t, relay.Config{WebSocketFramings: tc.framing})
			path := moq.NewPath("e2e", tc.name)

			// The publisher.
			origin := moq.NewOrigin()
			broadcast, _ := origin.CreateBroadcast(path)
			defer broadcast.Close()
			track, err := broadcast.CreateTrack(moq.Track{Name: "data", Priority: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer track.Close()
			pub := dial(t, ctx, r, tc.pub, session.Config{Publish: origin.Consume()})

			// Group 0 is the rendezvous: subscriptions start at the newest
			// group, so a subscriber that received it misses nothing after.
			writeGroup(t, track, 0)

			var wg sync.WaitGroup
			results := make([]subResult, len(tc.subs))
			ready := make(chan struct{}, len(tc.subs))
			for i, transport := range tc.subs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = subscribe(ctx, t, r, transport, path, ready)
				}()
			}
			for range tc.subs {
				select {
				case <-ready:
				case <-ctx.Done():
					t.Fatal("subscribers did not get the first group")
				}
			}
			for g := 1; g <= e2eGroups; g++ {
				writeGroup(t, track, g)
			}
			if err := track.Finish(); err != nil {
				t.Fatal(err)
			}
			// The publisher leaves once its track is delivered.
			if err := pub.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			wg.Wait()

			for i, res := range results {
				if res.err != nil {
					t.Errorf("subscriber %d (%s): %v", i, tc.subs[i], res.err)
					continue
				}
				if !res.ended {
					t.Errorf("subscriber %d (%s): never saw the broadcast end", i, tc.subs[i])
				}
				if len(res.groups) != e2eGroups+1 {
					t.Errorf("subscriber %d (%s): got %d groups, want %d", i, tc.subs[i], len(res.groups), e2eGroups+1)
				}
				for g := 0; g <= e2eGroups; g++ {
					frames, ok := res.groups[uint64(g)]
					if !ok {
						t.Errorf("subscriber %d: group %d missing", i, g)
						continue
					}
					if len(frames) != e2eFrames {
						t.Errorf("subscriber %d: group %d has %d frames", i, g, len(frames))
						continue
					}
					for f, got := range frames {
						if want := payload(g, f); !bytes.Equal(got, want) {
							t.Errorf("subscriber %d: group %d frame %d: %d bytes differ from the %d sent", i, g, f, len(got), len(want))
						}
					}
				}
			}
		})
	}
}

func writeGroup(t *testing.T, track *moq.TrackProducer, g int) {
	t.Helper()
	group, err := track.CreateGroup(uint64(g))
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	for f := range e2eFrames {
		if err := group.WriteFrame(payload(g, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := group.Finish(); err != nil {
		t.Fatal(err)
	}
}

type subResult struct {
	groups map[uint64][][]byte
	ended  bool // the broadcast was announced as ended
	err    error
}

// subscribe waits for the broadcast's announcement, reads the track to its
// end, then waits for the broadcast to be announced as ended.
func subscribe(ctx context.Context, t *testing.T, r *relay.Relay, transport string, path moq.Path, ready chan<- struct{}) (res subResult) {
	res.groups = make(map[uint64][][]byte)
	origin := moq.NewOrigin()
	announced := origin.Consume().Announcements()
	defer announced.Close()
	dial(t, ctx, r, transport, session.Config{Consume: origin})

	var track *moq.TrackConsumer
	for track == nil {
		a, err := announced.Next(ctx)
		if err != nil {
			res.err = fmt.Errorf("waiting for the announcement: %w", err)
			return res
		}
		if a.Path == path && a.Broadcast != nil {
			if track, err = a.Broadcast.SubscribeTrack(moq.Track{Name: "data"}); err != nil {
				res.err = err
				return res
			}
		}
	}
	defer track.Close()
	first := true
	for {
		group, err := track.NextGroup(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			res.err = fmt.Errorf("next group: %w", err)
			return res
		}
		var frames [][]byte
		for {
			frame, err := group.ReadFrame(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				res.err = fmt.Errorf("group %d: %w", group.Sequence(), err)
				return res
			}
			frames = append(frames, frame)
		}
		if _, dup := res.groups[group.Sequence()]; dup {
			res.err = fmt.Errorf("group %d delivered twice", group.Sequence())
			return res
		}
		res.groups[group.Sequence()] = frames
		if first {
			first = false
			ready <- struct{}{}
		}
	}
	for !res.ended {
		a, err := announced.Next(ctx)
		if err != nil {
			res.err = fmt.Errorf("waiting for the end of the broadcast: %w", err)
			return res
		}
		res.ended = a.Path == path && a.Broadcast == nil
	}
	return res
}

// TestFingerprintEndpoint checks GET /certificate.sha256: exactly 64 lowercase
// hex digits, no newline, readable cross-origin.
func TestFingerprintEndpoint(t *testing.T) {
	r := startRelay(t)
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(r.Port()) + "/certificate.sha256")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
	}
	if len(body) != 64 {
		t.Fatalf("body %q is %d bytes, want 64", body, len(body))
	}
	for _, c := range body {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			t.Fatalf("body %q is not lowercase hex", body)
		}
	}
	if string(body) != r.Fingerprint() {
		t.Errorf("body %s, want %s", body, r.Fingerprint())
	}
}

// TestDialHTTPFetchesFingerprint connects with an http:// URL, which trusts
// the certificate whose hash the relay serves over plain HTTP.
func TestDialHTTPFetchesFingerprint(t *testing.T) {
	r := startRelay(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess, err := session.Dial(ctx, "http://127.0.0.1:"+strconv.Itoa(r.Port())+"/", &session.Config{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if sess.Version() != session.Lite04 {
		t.Errorf("version %v, want %v", sess.Version(), session.Lite04)
	}
}

// TestSubscribeUnknownBroadcast gets ErrNotFound, not a hang.
func TestSubscribeUnknownBroadcast(t *testing.T) {
	r := startRelay(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, transport := range []string{"quic", "webtransport", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			sess := dial(t, ctx, r, transport, session.Config{})
			track, err := sess.ConsumeBroadcast(moq.NewPath("nobody/here")).SubscribeTrack(moq.Track{Name: "x"})
			if err != nil {
				t.Fatal(err)
			}
			defer track.Close()
			_, err = track.NextGroup(ctx)
			if !errors.Is(err, moq.ErrNotFound) {
				t.Fatalf("NextGroup: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestShutdownClosesSessionsCleanly stops a relay under connected clients:
// each sees its session closed cleanly by the relay (no error), not a
// connection dropped with the sockets. WebTransport is left out: its close
// capsule can still lose the race against the connection close that
// follows it, and the client then sees the QUIC close (code 0) instead.
func TestShutdownClosesSessionsCleanly(t *testing.T) {
	for _, transport := range []string{"quic", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := startRelay(t)
			origin := moq.NewOrigin()
			broadcast, _ := origin.CreateBroadcast(moq.NewPath("live"))
			defer broadcast.Close()
			sess := dial(t, ctx, r, transport, session.Config{Publish: origin.Consume()})
			// The relay serves the session once it has its announcement.
			view, err := r.Origin().Consume().ConsumeOnly(moq.NewPath("live"))
			if err != nil {
				t.Fatal(err)
			}
			announced := view.Announcements()
			defer announced.Close()
			if _, err := announced.Next(ctx); err != nil {
				t.Fatal(err)
			}
			r.Close()
			if err := sess.Wait(ctx); err != nil {
				t.Fatalf("session ended with %v, want a clean close", err)
			}
		})
	}
}
