package session_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/session"
	"github.com/moqgo/moq/transport"
	quictransport "github.com/moqgo/moq/transport/quic"
	quicgo "github.com/quic-go/quic-go"
)

func testLogger() *slog.Logger {
	if os.Getenv("MOQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testServer is a session.Server on a loopback port whose sessions are configured
// by a callback.
type testServer struct {
	srv         *session.Server
	addr        string
	fingerprint string
	sessions    chan *session.Session
}

func startServer(t *testing.T, configure func(*session.Request) *session.Config) *testServer {
	t.Helper()
	cert, err := selfsign.Default(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{
		srv: &session.Server{
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
			Logger:    testLogger(),
		},
		addr:        pc.LocalAddr().String(),
		fingerprint: selfsign.Fingerprint(cert),
		sessions:    make(chan *session.Session, 16),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = ts.srv.Serve(pc)
	}()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			req, err := ts.srv.Accept(context.Background())
			if err != nil {
				return
			}
			cfg := configure(req)
			if cfg == nil {
				req.Reject(moq.ErrUnauthorized)
				continue
			}
			cfg.Logger = testLogger()
			sess, err := req.Accept(context.Background(), cfg)
			if err != nil {
				continue
			}
			ts.sessions <- sess
		}
	}()
	t.Cleanup(func() {
		_ = ts.srv.Close()
		<-served
		<-accepted
		close(ts.sessions)
		for sess := range ts.sessions {
			_ = sess.Close()
		}
	})
	return ts
}

func (ts *testServer) url(transport string) string {
	if transport == "webtransport" {
		return "https://" + ts.addr + "/"
	}
	return "moqt://" + ts.addr
}

func (ts *testServer) dial(t *testing.T, ctx context.Context, transport string, cfg session.Config) *session.Session {
	t.Helper()
	sess, err := ts.tryDial(ctx, transport, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}

func (ts *testServer) tryDial(ctx context.Context, transport string, cfg session.Config) (*session.Session, error) {
	cfg.Fingerprint = ts.fingerprint
	cfg.Logger = testLogger()
	return session.Dial(ctx, ts.url(transport), &cfg)
}

// must returns v, panicking on err: for setup steps that cannot fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// watch opens an announcement queue on view, closed when the test ends.
func watch(t *testing.T, view *moq.OriginConsumer) *moq.Announcements {
	a := view.Announcements()
	t.Cleanup(a.Close)
	return a
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestVersions negotiates every version over both transports — by ALPN /
// WebTransport protocol for lite-03/04, by SETUP for lite-01/02 — and runs
// an announce + subscribe round trip in both directions on each.
func TestVersions(t *testing.T) {
	serverOrigin := moq.NewOrigin()
	ts := startServer(t, func(*session.Request) *session.Config {
		return &session.Config{Publish: serverOrigin.Consume(), Consume: serverOrigin}
	})
	for _, transport := range []string{"quic", "webtransport"} {
		for _, v := range session.DefaultVersions {
			t.Run(fmt.Sprintf("%s/%s", transport, v), func(t *testing.T) {
				ctx := testContext(t)
				serverName := fmt.Sprintf("server/%s/%s", transport, v)
				serverTrack := publishTrack(t, serverOrigin, serverName, "headlines")
				clientOrigin := moq.NewOrigin()
				clientName := fmt.Sprintf("client/%s/%s", transport, v)
				clientTrack := publishTrack(t, clientOrigin, clientName, "chat")
				sess := ts.dial(t, ctx, transport, session.Config{
					Versions: []session.Version{v},
					Publish:  must(clientOrigin.Consume().ConsumeOnly(moq.NewPath("client"))),
					Consume:  must(clientOrigin.PublishOnly(moq.NewPath("server"))),
				})
				if sess.Version() != v {
					t.Fatalf("negotiated %v, want %v", sess.Version(), v)
				}

				// Server → client, through the client's announcements.
				announced := watch(t, must(clientOrigin.Consume().ConsumeOnly(moq.NewPath(serverName))))
				b := waitAnnounced(t, ctx, announced, moq.NewPath(serverName))
				roundTrip(t, ctx, serverTrack, b, "headlines")

				// Client → server, through the server's origin.
				serverView := watch(t, must(serverOrigin.Consume().ConsumeOnly(moq.NewPath(clientName))))
				b = waitAnnounced(t, ctx, serverView, moq.NewPath(clientName))
				roundTrip(t, ctx, clientTrack, b, "chat")
			})
		}
	}
}

// publishTrack publishes a broadcast with one track into origin.
func publishTrack(t *testing.T, origin *moq.OriginProducer, path, track string) *moq.TrackProducer {
	t.Helper()
	b, err := origin.CreateBroadcast(moq.NewPath(path))
	if err != nil {
		t.Fatalf("cannot publish %s: %v", path, err)
	}
	t.Cleanup(b.Close)
	tp, err := b.CreateTrack(moq.Track{Name: track})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Close)
	return tp
}

func waitAnnounced(t *testing.T, ctx context.Context, c *moq.Announcements, path moq.Path) *moq.BroadcastConsumer {
	t.Helper()
	for {
		a, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", path, err)
		}
		if a.Path == path && a.Broadcast != nil {
			return a.Broadcast
		}
	}
}

// roundTrip subscribes to name in b, writes a group into src once the
// subscription reached it, and checks it arrives.
func roundTrip(t *testing.T, ctx context.Context, src *moq.TrackProducer, b *moq.BroadcastConsumer, name string) {
	t.Helper()
	sub, err := b.SubscribeTrack(moq.Track{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := src.Used(ctx); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("hello %s %d", name, time.Now().UnixNano())
	if err := src.WriteFrame([]byte(want)); err != nil {
		t.Fatal(err)
	}
	group, err := sub.NextGroup(ctx)
	if err != nil {
		t.Fatalf("NextGroup: %v", err)
	}
	got, err := group.ReadFrame(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestAnnouncements checks active and ended announcements in every version,
// including a broadcast that exists before the session starts.
func TestAnnouncements(t *testing.T) {
	serverOrigin := moq.NewOrigin()
	before, _ := serverOrigin.CreateBroadcast(moq.NewPath("live/before"))
	defer before.Close()
	ts := startServer(t, func(*session.Request) *session.Config {
		return &session.Config{Publish: serverOrigin.Consume()}
	})
	for _, v := range session.DefaultVersions {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			clientOrigin := moq.NewOrigin()
			ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{v}, Consume: must(clientOrigin.PublishOnly(moq.NewPath("live")))})
			announced := watch(t, clientOrigin.Consume())
			waitAnnounced(t, ctx, announced, moq.NewPath("live/before"))

			path := moq.NewPath("live", v.String())
			b, _ := serverOrigin.CreateBroadcast(path)
			waitAnnounced(t, ctx, announced, path)
			b.Close()
			for {
				a, err := announced.Next(ctx)
				if err != nil {
					t.Fatalf("waiting for the end of %s: %v", path, err)
				}
				if a.Path == path {
					if a.Broadcast != nil {
						t.Fatalf("%s announced again instead of ended", path)
					}
					break
				}
			}
		})
	}
}

// TestRejectedSession sees the server's refusal as an error at Dial.
func TestRejectedSession(t *testing.T) {
	ts := startServer(t, func(*session.Request) *session.Config { return nil })
	for _, transport := range []string{"quic", "webtransport"} {
		t.Run(transport, func(t *testing.T) {
			sess, err := ts.tryDial(testContext(t), transport, session.Config{})
			if err == nil {
				// Raw QUIC connects before the server decides: the refusal
				// closes the session.
				<-sess.Done()
				err = sess.Err()
				_ = sess.Close()
			}
			if err == nil {
				t.Fatal("session was not refused")
			}
		})
	}
}

// rawQUIC opens a raw QUIC connection speaking moq-lite-04 by ALPN, for tests
// that write bytes by hand.
func rawQUIC(t *testing.T, ctx context.Context, ts *testServer, conf *quicgo.Config) transport.Session {
	t.Helper()
	trust, err := selfsign.TrustFingerprint(ts.fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	trust.NextProtos = []string{"moq-lite-04"}
	conn, err := quictransport.Dial(ctx, ts.addr, trust, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
	return conn
}

// TestUnknownStreamType resets an unknown control stream with
// ErrUnexpectedStream and keeps the session.
func TestUnknownStreamType(t *testing.T) {
	origin := moq.NewOrigin()
	ts := startServer(t, func(*session.Request) *session.Config { return &session.Config{Publish: origin.Consume()} })
	ctx := testContext(t)
	conn := rawQUIC(t, ctx, ts, nil)

	st, err := conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(wire.AppendVarint(nil, 0x3f)); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(st)
	var se *transport.StreamError
	if !errors.As(err, &se) || se.Code != lite.ErrorCode(moq.ErrUnexpectedStream) {
		t.Fatalf("read: %v, want a reset with code %d", err, lite.ErrorCode(moq.ErrUnexpectedStream))
	}

	// The session still answers: an announce interest gets a live stream.
	st, err = conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg := wire.AppendVarint(nil, 1) // announce stream
	msg = append(msg, 2, 0, 0)       // ANNOUNCE_INTEREST: size 2, empty prefix, exclude hop 0
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	b, _ := origin.CreateBroadcast(moq.NewPath("x"))
	defer b.Close()
	r := wire.NewReader(st)
	body, err := r.ReadMessage(0)
	if err != nil {
		t.Fatalf("session did not survive the unknown stream: %v", err)
	}
	if len(body) == 0 || body[0] != 1 {
		t.Fatalf("got ANNOUNCE body %x, want an active announcement", body)
	}
}

// TestMalformedMessage closes the session with the decode error's code.
func TestMalformedMessage(t *testing.T) {
	ts := startServer(t, func(*session.Request) *session.Config { return &session.Config{} })
	ctx := testContext(t)
	conn := rawQUIC(t, ctx, ts, nil)
	st, err := conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A SUBSCRIBE whose size claims 3 bytes holding a truncated broadcast string.
	if _, err := st.Write([]byte{2, 3, 0, 9, 'a'}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Context().Done():
	case <-ctx.Done():
		t.Fatal("session stayed open after a malformed message")
	}
	var se *transport.SessionError
	if err := context.Cause(conn.Context()); !errors.As(err, &se) || se.Code != lite.ErrorCode(moq.ErrDecode) || !se.Remote {
		t.Fatalf("closed with %v, want the peer's decode error code %d", err, lite.ErrorCode(moq.ErrDecode))
	}
}

// TestSlowSubscriberIsBounded makes a subscriber that accepts group streams
// but never reads them, so the publisher's writes block on flow control. The
// publisher must keep its group writers to the in-flight limit (64) while the
// track goes on producing, instead of a goroutine per waiting group.
func TestSlowSubscriberIsBounded(t *testing.T) {
	origin := moq.NewOrigin()
	track := publishTrack(t, origin, "fast", "data")
	ts := startServer(t, func(*session.Request) *session.Config { return &session.Config{Publish: origin.Consume()} })
	ctx := testContext(t)
	// Small stream windows block every group writer after 16 KiB, and a
	// large connection window lets each of them open its stream whatever
	// order the publisher's scheduler picks.
	conf := quictransport.DefaultConfig()
	conf.InitialStreamReceiveWindow = 16 << 10
	conf.MaxStreamReceiveWindow = 16 << 10
	conf.InitialConnectionReceiveWindow = 64 << 20
	conf.MaxConnectionReceiveWindow = 64 << 20
	conn := rawQUIC(t, ctx, ts, conf)

	st, err := conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// SUBSCRIBE id 0 to fast/data, priority 0, lite-03+ fields defaulted.
	body := wire.AppendVarint(nil, 0)
	body = wire.AppendString(body, "fast")
	body = wire.AppendString(body, "data")
	body = append(body, 0, 0, 0, 0, 0)
	msg := wire.AppendVarint(wire.AppendVarint(nil, 2), uint64(len(body)))
	if _, err := st.Write(append(msg, body...)); err != nil {
		t.Fatal(err)
	}
	if err := track.Used(ctx); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	opened := make(chan struct{}, 1024)
	go func() {
		for {
			if _, err := conn.AcceptUniStream(ctx); err != nil {
				return
			}
			opened <- struct{}{}
		}
	}()
	payload := make([]byte, 64<<10)
	for range 500 {
		if err := track.WriteFrame(payload); err != nil {
			t.Fatal(err)
		}
	}
	// Once 64 streams were opened the writers are saturated.
	for i := range 64 {
		select {
		case <-opened:
		case <-ctx.Done():
			t.Fatalf("the publisher opened %d group streams, want 64", i)
		}
	}
	const slack = 16 // the test's own accept goroutine, timers, transport internals
	if n := runtime.NumGoroutine() - baseline; n > 64+slack {
		t.Fatalf("%d goroutines more than before subscribing; want at most %d", n, 64+slack)
	}
}

// TestConsumeBroadcastHoldsNoGoroutine consumes 1,000 broadcasts of the peer
// without subscribing: the session starts no goroutine for them. A released
// broadcast refuses subscriptions; one still held ends with the session.
func TestConsumeBroadcastHoldsNoGoroutine(t *testing.T) {
	origin := moq.NewOrigin()
	publishTrack(t, origin, "here", "data")
	ts := publisherServer(t, origin)
	ctx := testContext(t)
	sess := ts.dial(t, ctx, "quic", session.Config{})

	before := runtime.NumGoroutine()
	remotes := make([]*session.RemoteBroadcast, 1000)
	for i := range remotes {
		remotes[i] = sess.ConsumeBroadcast(moq.NewPath("here"))
	}
	if n := runtime.NumGoroutine(); n > before+10 {
		t.Errorf("%d goroutines before, %d with 1000 consumed broadcasts", before, n)
	}
	for _, r := range remotes[1:] {
		r.Close()
	}
	if _, err := remotes[1].SubscribeTrack(moq.Track{Name: "data"}); !errors.Is(err, moq.ErrClosed) {
		t.Errorf("a released broadcast: SubscribeTrack = %v, want ErrClosed", err)
	}

	// The one still held works, and ends with the session.
	track, err := remotes[0].SubscribeTrack(moq.Track{Name: "data"})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := remotes[0].SubscribeTrack(moq.Track{Name: "other"}); !errors.Is(err, moq.ErrClosed) {
		t.Errorf("after the session closed: SubscribeTrack = %v, want ErrClosed", err)
	}
}

// TestShutdownReportsUndelivered shuts a publisher's session down with a
// context already done while a subscription to a finished track is still
// being delivered: Shutdown says the drain was cut short. With time to
// deliver, the same shutdown reports nothing.
func TestShutdownReportsUndelivered(t *testing.T) {
	for _, patient := range []bool{false, true} {
		t.Run(fmt.Sprintf("patient=%v", patient), func(t *testing.T) {
			origin := moq.NewOrigin()
			track := publishTrack(t, origin, "vod", "data")
			for g := range uint64(3) {
				writeTestGroup(t, track, g, 2)
			}
			if err := track.Finish(); err != nil {
				t.Fatal(err)
			}
			ts := publisherServer(t, origin)
			ctx := testContext(t)
			sess := ts.dial(t, ctx, "quic", session.Config{})
			server := <-ts.sessions
			sub, err := sess.Subscribe(ctx, moq.NewPath("vod"), "data", session.SubscribeOptions{Start: seq(0)})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			shutdownCtx := ctx
			if !patient {
				var cancel context.CancelFunc
				shutdownCtx, cancel = context.WithCancel(ctx)
				cancel()
			}
			err = server.Shutdown(shutdownCtx)
			if patient && err != nil {
				t.Fatalf("Shutdown with time to deliver: %v", err)
			}
			if !patient && !errors.Is(err, context.Canceled) {
				t.Fatalf("Shutdown with a done context: %v, want an error wrapping context.Canceled", err)
			}
		})
	}
}

// TestBlockedOpenHonoursContext has the server Fetch from and GoAway a
// client that grants it no bidirectional stream: both wait for stream credit
// and return their context's error when it ends, leaving the session open.
func TestBlockedOpenHonoursContext(t *testing.T) {
	ts := publisherServer(t, moq.NewOrigin())
	ctx := testContext(t)
	conf := quictransport.DefaultConfig()
	conf.MaxIncomingStreams = -1 // no bidirectional stream for the server
	client := ts.dial(t, ctx, "quic", session.Config{Versions: []session.Version{session.Lite04},
		DialOptions: session.DialOptions{QUICConfig: conf}})
	server := <-ts.sessions

	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	if _, err := server.Fetch(short(), moq.NewPath("any"), "data", 0, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Fetch waiting for stream credit: %v, want context.DeadlineExceeded", err)
	}
	if err := server.GoAway(short(), ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GoAway waiting for stream credit: %v, want context.DeadlineExceeded", err)
	}
	select {
	case <-server.Done():
		t.Fatalf("the session ended: %v", server.Err())
	case <-client.Done():
		t.Fatalf("the client session ended: %v", client.Err())
	default:
	}
}
