package qmux

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/moqgo/moq/internal/vectortest"
	"github.com/moqgo/moq/transport"
)

// liveIdle is the idle timeout of the liveness tests: short enough for fast
// tests, long enough for keep-alives to cross a loaded machine.
const liveIdle = 400 * time.Millisecond

// stayOpen fails the test if any of the sessions closes within d.
func stayOpen(t *testing.T, d time.Duration, sessions ...transport.Session) {
	t.Helper()
	closed := make(chan transport.Session, len(sessions))
	for _, s := range sessions {
		stop := context.AfterFunc(s.Context(), func() { closed <- s })
		defer stop()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case s := <-closed:
		t.Fatalf("session closed: %v", context.Cause(s.Context()))
	case <-timer.C:
	}
}

// waitGoroutines waits for the goroutines of s to exit.
func waitGoroutines(t *testing.T, s *session) {
	t.Helper()
	await(t, async(func() error { s.wg.Wait(); return nil }), "the session's goroutines")
}

func setCloseTimeout(s *session, d time.Duration) {
	s.mu.Lock()
	s.closeTimeout = d
	s.mu.Unlock()
}

// stallConn is a connection whose writes can be made to block until it is
// closed, as when the peer stops reading and the TCP buffers are full.
type stallConn struct {
	net.Conn
	stall     chan struct{}
	closed    chan struct{}
	stallOnce sync.Once
	closeOnce sync.Once
}

func newStallConn(c net.Conn) *stallConn {
	return &stallConn{Conn: c, stall: make(chan struct{}), closed: make(chan struct{})}
}

func (c *stallConn) stallWrites() { c.stallOnce.Do(func() { close(c.stall) }) }

func (c *stallConn) Write(p []byte) (int, error) {
	select {
	case <-c.stall:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Write(p)
	}
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// stallServer starts a test server whose accepted connections are stallConns,
// reported on the returned channel.
func stallServer(t *testing.T, opts *AcceptOptions) (*testServer, <-chan *stallConn) {
	conns := make(chan *stallConn, 4)
	ts := startTestServer(t, nil, opts, func(c net.Conn) net.Conn {
		sc := newStallConn(c)
		conns <- sc
		return sc
	})
	return ts, conns
}

func TestLivenessOptions(t *testing.T) {
	for _, tt := range []struct {
		idle, keepAlive         time.Duration
		wantIdle, wantKeepAlive time.Duration
	}{
		{0, 0, DefaultIdleTimeout, DefaultKeepAlivePeriod},
		{-1, -1, 0, 0},
		{time.Minute, -1, time.Minute, 0},
		{-1, time.Hour, 0, time.Hour},
		{time.Second, 0, time.Second, DefaultKeepAlivePeriod},
	} {
		l := resolveLiveness(tt.idle, tt.keepAlive)
		if l.idle != tt.wantIdle || l.keepAlive != tt.wantKeepAlive || l.clock == nil {
			t.Errorf("resolveLiveness(%v, %v) = %v, %v; want %v, %v", tt.idle, tt.keepAlive, l.idle, l.keepAlive, tt.wantIdle, tt.wantKeepAlive)
		}
	}
	if s := newSessionState(QMux00, "", true); s.closeTimeout != time.Second {
		t.Errorf("close deadline %v, want 1 s", s.closeTimeout)
	}
	// The effective values: the smaller idle timeout of the two sides, and
	// keep-alives at most every half of it.
	for _, tt := range []struct {
		idle, keepAlive         time.Duration
		peerMs                  uint64
		wantIdle, wantKeepAlive time.Duration
	}{
		{30 * time.Second, 10 * time.Second, 0, 30 * time.Second, 10 * time.Second},
		{30 * time.Second, 10 * time.Second, 60000, 30 * time.Second, 10 * time.Second},
		{30 * time.Second, 10 * time.Second, 4000, 4 * time.Second, 2 * time.Second},
		{time.Second, 10 * time.Second, 0, time.Second, 500 * time.Millisecond},
		{0, 10 * time.Second, 4000, 0, 2 * time.Second}, // ours disabled: the peer still times out
		{30 * time.Second, 0, 4000, 4 * time.Second, 0},
		{30 * time.Second, 10 * time.Second, 1 << 62, 30 * time.Second, 10 * time.Second}, // beyond time.Duration
	} {
		s := newSessionState(QMux00, "", true)
		s.live = liveness{idle: tt.idle, keepAlive: tt.keepAlive}
		s.mu.Lock()
		s.handleParamsLocked(&TransportParams{MaxIdleTimeout: tt.peerMs})
		idle, keepAlive := s.idleLocked(), s.keepAliveLocked()
		s.mu.Unlock()
		s.cancel(nil)
		if idle != tt.wantIdle || keepAlive != tt.wantKeepAlive {
			t.Errorf("ours %v/%v, peer %d ms: idle %v, keep-alive %v; want %v, %v", tt.idle, tt.keepAlive, tt.peerMs, idle, keepAlive, tt.wantIdle, tt.wantKeepAlive)
		}
	}
}

// TestMaxIdleTimeoutParam checks max_idle_timeout (0x01) against @moq/qmux
// 0.3.3 (qmux-new.json): its transport parameters decode with the idle timeout,
// and ours encode it the same way; the session itself does not declare it.
func TestMaxIdleTimeoutParam(t *testing.T) {
	var file struct {
		Vectors []struct {
			Name   string `json:"name"`
			Hex    string `json:"hex"`
			Fields struct {
				Variants []string       `json:"variants"`
				Params   map[string]any `json:"params"`
			} `json:"fields"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(vectortest.Load(t, "qmux-new.json"), &file); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, v := range file.Vectors {
		if !strings.HasPrefix(v.Name, "transport_parameters") || !slices.Contains(v.Fields.Variants, "qmux-00") {
			continue
		}
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatal(err)
		}
		f, n, err := ParseFrame(b, QMux00)
		if err != nil || n != len(b) || f.Kind != KindTransportParameters {
			t.Fatalf("%s: %v, %d of %d bytes, %v", v.Name, f.Kind, n, len(b), err)
		}
		p := func(key string) uint64 {
			f, ok := v.Fields.Params[key].(float64)
			if !ok {
				t.Fatalf("%s: params.%s = %v", v.Name, key, v.Fields.Params[key])
			}
			return uint64(f)
		}
		want := TransportParams{
			MaxIdleTimeout:                 p("max_idle_timeout"),
			InitialMaxData:                 p("initial_max_data"),
			InitialMaxStreamDataBidiLocal:  p("initial_max_stream_data_bidi_local"),
			InitialMaxStreamDataBidiRemote: p("initial_max_stream_data_bidi_remote"),
			InitialMaxStreamDataUni:        p("initial_max_stream_data_uni"),
			InitialMaxStreamsBidi:          p("initial_max_streams_bidi"),
			InitialMaxStreamsUni:           p("initial_max_streams_uni"),
		}
		got := f.Params
		// The parameters of qmux-01 and later are checked by TestVectors.
		got.MaxDatagramFrameSize, got.MaxRecordSize, got.ResetStreamAt = 0, 0, false
		if got != want {
			t.Errorf("%s: decoded %+v, want %+v", v.Name, got, want)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no qmux-00 transport parameters in qmux-new.json")
	}

	// transport_parameters_recommended up to its parameters after 0x09.
	const want = "ff5153300d0a0d0a26" + "010480007530" + "040480100000" + "050480040000" +
		"060480040000" + "070480040000" + "08024064" + "09024064"
	f := Frame{Kind: KindTransportParameters, Params: defaultTransportParams}
	f.Params.MaxIdleTimeout = 30000
	b, err := AppendFrame(nil, &f, QMux00)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding %s, want %s", got, want)
	}
	if defaultTransportParams.MaxIdleTimeout != 0 {
		t.Fatal("the session declares max_idle_timeout: its first frame would differ from @moq/qmux 0.0.6's")
	}
}

// TestIdleTimeoutSilentPeer: a peer that completes the upgrade and then sends
// nothing (and reads nothing, so pings go unanswered) is closed by the server
// after the idle timeout, with the idle error, and told so in the WebSocket
// close; the session's goroutines end.
func TestIdleTimeoutSilentPeer(t *testing.T) {
	for _, fr := range framings {
		t.Run(fr.name, func(t *testing.T) {
			ts := startTestServer(t, []string{"moq-lite-04"}, &AcceptOptions{IdleTimeout: liveIdle}, nil)
			start := time.Now()
			p, s := rawPair(t, ts, fr.framing.String()+".moq-lite-04")
			setCloseTimeout(s, 200*time.Millisecond)
			cause := waitClosed(t, s.Context())
			if !errors.Is(cause, ErrIdleTimeout) {
				t.Fatalf("cause %v, want ErrIdleTimeout", cause)
			}
			if elapsed := time.Since(start); elapsed < liveIdle {
				t.Fatalf("closed after %v, before the idle timeout %v", elapsed, liveIdle)
			}
			waitGoroutines(t, s)
			// The peer finds the reason in the WebSocket close, after the
			// transport parameters in qmux-00 and no close frame.
			for {
				f, err := p.recv()
				if err != nil {
					if websocket.CloseStatus(err) != websocket.StatusGoingAway {
						t.Fatalf("peer: %v, want a Going Away WebSocket closure", err)
					}
					break
				}
				if f.Kind != KindTransportParameters {
					t.Fatalf("peer received %v", f.Kind)
				}
			}
		})
	}
}

// TestIdleTimeoutFromPeerParams: a qmux-00 peer declaring a max_idle_timeout
// below ours lowers the session's idle timeout.
func TestIdleTimeoutFromPeerParams(t *testing.T) {
	ts := startTestServer(t, nil, &AcceptOptions{IdleTimeout: time.Hour}, nil)
	p, s := rawPair(t, ts, SubprotocolQMux00)
	params := defaultTransportParams
	params.MaxIdleTimeout = 300
	p.send(Frame{Kind: KindTransportParameters, Params: params})
	sent := time.Now()
	cause := waitClosed(t, s.Context())
	if !errors.Is(cause, ErrIdleTimeout) {
		t.Fatalf("cause %v, want ErrIdleTimeout", cause)
	}
	if elapsed := time.Since(sent); elapsed < 300*time.Millisecond {
		t.Fatalf("closed %v after the last frame, before the peer's 300 ms", elapsed)
	}
}

// TestIdleTimerResetByTraffic: frames keep a peer that never answers pings
// alive for several idle timeouts; once they stop, the session times out, no
// sooner than the idle timeout after the last one.
func TestIdleTimerResetByTraffic(t *testing.T) {
	for _, fr := range framings {
		t.Run(fr.name, func(t *testing.T) {
			ts := startTestServer(t, nil, &AcceptOptions{IdleTimeout: liveIdle}, nil)
			p, s := rawPair(t, ts, fr.framing.String())
			if fr.framing == QMux00 {
				p.sendParams()
			}
			ticker := time.NewTicker(liveIdle / 4)
			defer ticker.Stop()
			end := time.After(3 * liveIdle)
			var last time.Time
		traffic:
			for {
				select {
				case <-s.Context().Done():
					t.Fatalf("closed despite traffic: %v", context.Cause(s.Context()))
				case <-end:
					break traffic
				case <-ticker.C:
					p.send(Frame{Kind: KindStream, StreamID: 0}) // an empty STREAM frame
					last = time.Now()
				}
			}
			ticker.Stop()
			cause := waitClosed(t, s.Context())
			if !errors.Is(cause, ErrIdleTimeout) {
				t.Fatalf("cause %v, want ErrIdleTimeout", cause)
			}
			if quiet := time.Since(last); quiet < liveIdle {
				t.Fatalf("closed %v after the last frame, before the idle timeout %v", quiet, liveIdle)
			}
		})
	}
}

// newLivePair is newPair with options on both sides.
func newLivePair(t *testing.T, offer []string, server *AcceptOptions, client *DialOptions) (*session, *session) {
	ts := startTestServer(t, []string{"moq-lite-03"}, server, nil)
	c := dialTestOpts(t, ts.URL, offer, client)
	return c, ts.next(t)
}

// TestKeepAliveQuietSession: a healthy Go-to-Go session with no traffic at all
// stays up across several idle timeouts thanks to keep-alive pings, and still works.
func TestKeepAliveQuietSession(t *testing.T) {
	for _, fr := range framings {
		t.Run(fr.name, func(t *testing.T) {
			c, s := newLivePair(t, fr.offer, &AcceptOptions{IdleTimeout: liveIdle}, &DialOptions{IdleTimeout: liveIdle})
			stayOpen(t, 3*liveIdle, c, s)
			echoOnce(t, c, s)
		})
	}
}

// TestKeepAliveOneSided: when only the client pings, its pings keep the
// server's idle timer running as traffic, and the server's pongs the client's.
func TestKeepAliveOneSided(t *testing.T) {
	c, s := newLivePair(t, Offer(nil),
		&AcceptOptions{IdleTimeout: liveIdle, KeepAlivePeriod: -1},
		&DialOptions{IdleTimeout: liveIdle})
	// Without pings on either side, the same session times out meanwhile.
	c2, s2 := newLivePair(t, Offer(nil),
		&AcceptOptions{IdleTimeout: liveIdle, KeepAlivePeriod: -1},
		&DialOptions{IdleTimeout: liveIdle, KeepAlivePeriod: -1})
	stayOpen(t, 3*liveIdle, c, s)
	for _, x := range []*session{c2, s2} {
		if cause := waitClosed(t, x.Context()); !errors.Is(cause, ErrIdleTimeout) && !errors.Is(cause, ErrConnectionLost) {
			t.Fatalf("cause %v, want ErrIdleTimeout (or the connection lost, once the other side timed out)", cause)
		}
	}
	for _, x := range []*session{c, s} {
		if x.Context().Err() != nil {
			t.Fatalf("session closed: %v", context.Cause(x.Context()))
		}
	}
}

// TestIdleTimeoutPausedByBackpressure: while a legacy session stops reading
// because the application lags, the peer's silence is not its fault, and the
// idle timer does not fire.
func TestIdleTimeoutPausedByBackpressure(t *testing.T) {
	ts := startTestServer(t, nil, &AcceptOptions{IdleTimeout: liveIdle}, nil)
	p, s := rawPair(t, ts, SubprotocolWebTransport)
	paused := make(chan struct{}, 1)
	s.mu.Lock()
	s.testHookBackpressure = func() {
		select {
		case paused <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	const total = legacyRecvBuffer + 1<<20
	sent := async(func() error {
		for off := 0; off < total; off += MaxStreamPayload {
			n := min(MaxStreamPayload, total-off)
			if err := p.trySend(Frame{Kind: KindStream, StreamID: 0, Data: pattern(off, n), Fin: off+n == total}); err != nil {
				return err
			}
		}
		return nil
	})
	select {
	case <-paused:
	case <-time.After(testTimeout):
		t.Fatal("the reader never paused")
	}
	stayOpen(t, 3*liveIdle, s)
	in, err := s.AcceptStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, in); err != nil || n != total {
		t.Fatalf("read %d bytes, %v; want %d", n, err, total)
	}
	if err := await(t, sent, "flood"); err != nil {
		t.Fatal(err)
	}
}

// TestCloseFrameBeforeExit: when CloseWithError returns, APPLICATION_CLOSE is
// on the wire, so a process that exits right after (its connection torn down)
// still tells its peer, which was not even reading meanwhile.
func TestCloseFrameBeforeExit(t *testing.T) {
	for _, fr := range framings {
		t.Run(fr.name, func(t *testing.T) {
			ts, conns := stallServer(t, nil)
			p, s := rawPair(t, ts, fr.framing.String())
			sc := <-conns
			setCloseTimeout(s, 200*time.Millisecond) // the peer does not answer the WebSocket close
			if err := s.CloseWithError(7, "exiting"); err != nil {
				t.Fatal(err)
			}
			_ = sc.Conn.Close() // the process exits
			for {
				f, err := p.recv()
				if err != nil {
					t.Fatalf("peer: %v before APPLICATION_CLOSE", err)
				}
				if f.Kind == KindApplicationClose {
					if f.Code != 7 || f.Reason != "exiting" {
						t.Fatalf("close frame %+v", f)
					}
					break
				}
			}
		})
	}
}

// TestCloseWaitsForHandshake: with a peer that reads, CloseWithError returns
// as soon as the close frame and the WebSocket close handshake are done, well
// before its deadline, and the peer has seen the close frame by then.
func TestCloseWaitsForHandshake(t *testing.T) {
	ts := newTestServer(t, nil)
	p, s := rawPair(t, ts, SubprotocolQMux00)
	setCloseTimeout(s, testTimeout)
	got := make(chan Frame, 1)
	reading := async(func() error {
		for {
			f, err := p.recv()
			if err != nil {
				return err // the WebSocket close, answered by the library
			}
			if f.Kind == KindApplicationClose {
				got <- f
			}
		}
	})
	start := time.Now()
	if err := s.CloseWithError(3, "done"); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > testTimeout/2 {
		t.Fatalf("CloseWithError took %v", elapsed)
	}
	select {
	case f := <-got:
		if f.Code != 3 || f.Reason != "done" {
			t.Fatalf("close frame %+v", f)
		}
	default:
		t.Fatal("CloseWithError returned before the peer had the close frame")
	}
	if err := await(t, reading, "the peer's reader"); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("peer: %v, want a normal WebSocket closure", err)
	}
}

// TestCloseBoundedWhenPeerStopsReading: a peer that stops reading (writes
// block) does not hold CloseWithError beyond its deadline, on either side; the
// connection is cut and every goroutine ends.
func TestCloseBoundedWhenPeerStopsReading(t *testing.T) {
	const deadline = 300 * time.Millisecond
	check := func(t *testing.T, s *session, sc *stallConn) {
		t.Helper()
		st, err := s.OpenUniStream(t.Context())
		if err == nil {
			_, err = st.Write(pattern(1, 32<<10)) // buffered; the writer blocks on it
		}
		if err != nil {
			t.Fatal(err)
		}
		sc.stallWrites()
		setCloseTimeout(s, deadline)
		start := time.Now()
		if err := s.CloseWithError(1, "bye"); err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed > deadline+5*time.Second {
			t.Fatalf("CloseWithError took %v, deadline %v", elapsed, deadline)
		}
		wantSessionError(t, context.Cause(s.Context()), 1, "bye", false)
		select {
		case <-sc.closed:
		default:
			t.Fatal("connection not closed")
		}
	}
	t.Run("server", func(t *testing.T) {
		for _, fr := range framings {
			t.Run(fr.name, func(t *testing.T) {
				ts, conns := stallServer(t, nil)
				p, s := rawPair(t, ts, fr.framing.String())
				if fr.framing == QMux00 {
					p.sendParams()
					p.expect(KindTransportParameters)
				}
				sc := <-conns
				if s.live.netConn != net.Conn(sc) {
					t.Fatalf("the session did not record the hijacked connection: %v", s.live.netConn)
				}
				check(t, s, sc)
			})
		}
	})
	t.Run("client", func(t *testing.T) {
		url, peers := rawServer(t, SubprotocolWebTransport)
		conns := make(chan *stallConn, 1)
		dialer := &net.Dialer{}
		client := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				sc := newStallConn(c)
				conns <- sc
				return sc, nil
			},
		}}
		t.Cleanup(client.CloseIdleConnections)
		s := dialTestOpts(t, url, []string{SubprotocolWebTransport}, &DialOptions{HTTPClient: client})
		nextRaw(t, peers)
		check(t, s, <-conns)
	})
}

// TestCloseSendsParametersFirst: a qmux-00 session closed before its transport
// parameters went out still sends them first, or the peer would take the close
// frame for a protocol violation.
func TestCloseSendsParametersFirst(t *testing.T) {
	s := newSessionState(QMux00, "", false)
	defer s.cancel(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked(&transport.SessionError{Code: 2}, &Frame{Kind: KindApplicationClose, Code: 2})
	s.abortTimer.Stop()
	var kinds []Kind
	for b := s.nextFrameLocked(nil); b != nil; b = s.nextFrameLocked(nil) {
		f, _, err := ParseFrame(b, QMux00)
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, f.Kind)
	}
	if len(kinds) != 2 || kinds[0] != KindTransportParameters || kinds[1] != KindApplicationClose {
		t.Fatalf("frames after close: %v, want QX_TRANSPORT_PARAMETERS then APPLICATION_CLOSE", kinds)
	}
}
