package qmux

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/moqgo/moq/transport"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

// testServer is a loopback HTTP server whose handler accepts qmux sessions.
type testServer struct {
	*httptest.Server
	sessions chan *session
}

// newTestServer starts a server on 127.0.0.1 that accepts sessions with the
// given application protocols. Sessions nobody took are closed at cleanup.
func newTestServer(tb testing.TB, protocols []string) *testServer {
	tb.Helper()
	return startTestServer(tb, protocols, nil, nil)
}

// startTestServer is newTestServer with accept options and, if wrap is not nil,
// a wrapper around every connection the server accepts.
func startTestServer(tb testing.TB, protocols []string, opts *AcceptOptions, wrap func(net.Conn) net.Conn) *testServer {
	tb.Helper()
	ts := &testServer{sessions: make(chan *session, 64)}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Offered(r) {
			http.Error(w, "websocket only", http.StatusBadRequest)
			return
		}
		s, err := AcceptWithOptions(w, r, protocols, opts)
		if err != nil {
			return
		}
		ts.sessions <- s.(*session)
	}))
	if wrap != nil {
		ts.Listener = wrapListener{ts.Listener, wrap}
	}
	ts.Start()
	tb.Cleanup(func() {
		ts.Close()
		for {
			select {
			case s := <-ts.sessions:
				_ = s.CloseWithError(0, "")
			default:
				return
			}
		}
	})
	return ts
}

// next returns the next accepted session and closes it at cleanup.
func (ts *testServer) next(tb testing.TB) *session {
	tb.Helper()
	select {
	case s := <-ts.sessions:
		tb.Cleanup(func() { _ = s.CloseWithError(0, "") })
		watchdog(tb, s)
		return s
	case <-time.After(testTimeout):
		tb.Fatal("no session accepted")
		return nil
	}
}

// dialTest dials ts offering the given subprotocols and closes the session at cleanup.
func dialTest(tb testing.TB, url string, offer []string) *session {
	tb.Helper()
	return dialTestOpts(tb, url, offer, nil)
}

// dialTestOpts is dialTest with options.
func dialTestOpts(tb testing.TB, url string, offer []string, opts *DialOptions) *session {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := dial(ctx, url, offer, opts)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { _ = s.CloseWithError(0, "") })
	watchdog(tb, s)
	return s
}

// watchdog fails s if the test runs longer than testTimeout, which unblocks
// every pending call on it so that a stuck test fails instead of hanging.
func watchdog(tb testing.TB, s *session) {
	timer := time.AfterFunc(testTimeout, func() {
		s.mu.Lock()
		s.failLocked(InternalError, "test timed out")
		s.mu.Unlock()
	})
	tb.Cleanup(func() { timer.Stop() })
}

// newPair returns a connected client and server using the given subprotocol offer.
func newPair(tb testing.TB, offer []string) (client, server *session) {
	tb.Helper()
	ts := newTestServer(tb, []string{"moq-lite-03", "moql"})
	client = dialTest(tb, ts.URL, offer)
	server = ts.next(tb)
	return client, server
}

// wrapListener wraps every accepted connection.
type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// framings are the two ways to run a session, as client offers.
var framings = []struct {
	name    string
	framing Framing
	offer   []string
}{
	{"qmux-00", QMux00, Offer(nil)},
	{"webtransport", WebTransport, []string{SubprotocolWebTransport}},
}

// rawPeer is a hand-driven WebSocket endpoint that speaks frames directly, in
// the layout of @moq/qmux 0.0.6 unless layout says otherwise.
type rawPeer struct {
	tb      testing.TB
	conn    *websocket.Conn
	framing Framing
	layout  Layout
}

// rawPair connects a raw client to ts offering subprotocols and returns it with
// the server session it created. The raw client hangs up before the session is
// closed at cleanup, so that the close handshake does not wait for it.
func rawPair(tb testing.TB, ts *testServer, subprotocols ...string) (*rawPeer, *session) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, ts.URL, &websocket.DialOptions{Subprotocols: subprotocols})
	if err != nil {
		tb.Fatalf("raw dial: %v", err)
	}
	conn.SetReadLimit(-1)
	framing, _ := ParseSubprotocol(conn.Subprotocol())
	p := &rawPeer{tb: tb, conn: conn, framing: framing}
	s := ts.next(tb)
	tb.Cleanup(p.hangUp)
	return p, s
}

// hangUp closes the raw connection with a WebSocket close handshake.
func (p *rawPeer) hangUp() {
	_ = p.conn.Close(websocket.StatusNormalClosure, "")
}

// rawServer is an HTTP server that upgrades every request to a raw peer
// selecting subprotocol sub.
func rawServer(tb testing.TB, sub string) (url string, peers <-chan *rawPeer) {
	tb.Helper()
	ch := make(chan *rawPeer, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{sub}})
		if err != nil {
			return
		}
		conn.SetReadLimit(-1)
		framing, _ := ParseSubprotocol(conn.Subprotocol())
		ch <- &rawPeer{tb: tb, conn: conn, framing: framing}
	}))
	tb.Cleanup(func() {
		srv.Close()
		for {
			select {
			case p := <-ch:
				_ = p.conn.CloseNow()
			default:
				return
			}
		}
	})
	return srv.URL, ch
}

func nextRaw(tb testing.TB, peers <-chan *rawPeer) *rawPeer {
	tb.Helper()
	select {
	case p := <-peers:
		tb.Cleanup(p.hangUp)
		return p
	case <-time.After(testTimeout):
		tb.Fatal("no raw peer connected")
		return nil
	}
}

func (p *rawPeer) sendRaw(msg []byte) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.conn.Write(ctx, websocket.MessageBinary, msg); err != nil {
		p.tb.Fatalf("raw write: %v", err)
	}
}

func (p *rawPeer) send(f Frame) {
	p.tb.Helper()
	if err := p.trySend(f); err != nil {
		p.tb.Fatalf("raw send %v: %v", f.Kind, err)
	}
}

// trySend sends f and returns the error, for peers that expect to be cut off.
func (p *rawPeer) trySend(f Frame) error {
	b, err := AppendFrameLayout(nil, &f, p.framing, p.layout)
	if err != nil {
		p.tb.Fatalf("encode %v: %v", f.Kind, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return p.conn.Write(ctx, websocket.MessageBinary, b)
}

// sendParams sends the default transport parameters, as every qmux-00 peer does first.
func (p *rawPeer) sendParams() {
	p.send(Frame{Kind: KindTransportParameters, Params: defaultTransportParams})
}

// recv returns the next frame, or an error once the connection ends.
func (p *rawPeer) recv() (Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, msg, err := p.conn.Read(ctx)
	if err != nil {
		return Frame{}, err
	}
	if typ != websocket.MessageBinary {
		return Frame{}, errors.New("text message")
	}
	f, n, err := ParseFrameLayout(msg, p.framing, p.layout)
	if err == nil && n != len(msg) {
		err = errors.New("trailing bytes after frame")
	}
	if err == nil && len(msg) > MaxFrameSize {
		err = errors.New("frame larger than MaxFrameSize")
	}
	return f, err
}

// expect returns the next frame of the given kind, skipping others.
func (p *rawPeer) expect(kind Kind) Frame {
	p.tb.Helper()
	for {
		f, err := p.recv()
		if err != nil {
			p.tb.Fatalf("waiting for %v: %v", kind, err)
		}
		if f.Kind == kind {
			return f
		}
	}
}

// waitClosed waits for ctx to be done and returns its cause.
func waitClosed(tb testing.TB, ctx context.Context) error {
	tb.Helper()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(testTimeout):
		tb.Fatal("session not closed")
		return nil
	}
}

// wantTransportError checks that err is a local *TransportError with code.
func wantTransportError(tb testing.TB, err error, code TransportErrorCode) {
	tb.Helper()
	var te *TransportError
	if !errors.As(err, &te) || te.Code != code || te.Remote || !errors.Is(err, code) {
		tb.Fatalf("cause = %v, want a local TransportError with %v", err, code)
	}
}

// wantSessionError checks that err is a *transport.SessionError with the given values.
func wantSessionError(tb testing.TB, err error, code uint32, reason string, remote bool) {
	tb.Helper()
	var se *transport.SessionError
	if !errors.As(err, &se) || se.Code != code || se.Reason != reason || se.Remote != remote {
		tb.Fatalf("error = %v, want SessionError{%d, %q, remote=%t}", err, code, reason, remote)
	}
}

func async(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

func await(tb testing.TB, ch <-chan error, what string) error {
	tb.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testTimeout):
		tb.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// pattern returns n deterministic bytes.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
