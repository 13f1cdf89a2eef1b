package webtransport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"
	"go.uber.org/goleak"

	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/transport"
	moqquic "github.com/moqgo/moq/transport/quic"
	"github.com/moqgo/moq/transport/transporttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	return selfsign.Default(time.Now())
})

// listenerALPNs is what a moq relay announces on its single UDP port.
var listenerALPNs = []string{"h3", "moq-lite-04", "moq-lite-03", "moql"}

// testServer runs one quic-go listener dispatching by ALPN: "h3" to a
// WebTransport Server, anything else to transport/quic.
type testServer struct {
	addr string
	srv  *Server
	// raw receives sessions of connections that negotiated a moq ALPN.
	raw chan transport.Session
	// conns receives every accepted QUIC connection.
	conns chan *quicgo.Conn
	// served receives what ServeQUICConn returned, per connection.
	served chan error
}

type serverOptions struct {
	protocols []string
	handler   func(*Request)
	opts      []ServerOption
	// socket, if not nil, wraps the listener's UDP socket.
	socket func(*net.UDPConn) net.PacketConn
}

func startServer(tb testing.TB, o serverOptions) *testServer {
	tb.Helper()
	cert, err := testCert()
	if err != nil {
		tb.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	var pc net.PacketConn = udp
	if o.socket != nil {
		pc = o.socket(udp)
	}
	tr := &quicgo.Transport{Conn: pc}
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: listenerALPNs}, moqquic.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{
		addr:   ln.Addr().String(),
		srv:    NewServer(o.protocols, o.handler, o.opts...),
		raw:    make(chan transport.Session, 16),
		conns:  make(chan *quicgo.Conn, 16),
		served: make(chan error, 16),
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			select {
			case ts.conns <- conn:
			default:
			}
			if conn.ConnectionState().TLS.NegotiatedProtocol == http3.NextProtoH3 {
				wg.Go(func() {
					err := ts.srv.ServeQUICConn(conn)
					select {
					case ts.served <- err:
					default:
					}
				})
				continue
			}
			ts.raw <- moqquic.Wrap(conn)
		}
	})
	tb.Cleanup(func() {
		if err := ts.srv.Close(); err != nil {
			tb.Errorf("Server.Close: %v", err)
		}
		ln.Close()
		wg.Wait()
		tr.Close()
		udp.Close()
	})
	return ts
}

func clientTLS(tb testing.TB) *tls.Config {
	cert, err := testCert()
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{RootCAs: pool}
}

// acceptAll returns a handler accepting every request and delivering the
// sessions (or errors) on the returned channel, and the requests on reqs.
func acceptAll() (func(*Request), chan transport.Session, chan *Request) {
	sessions := make(chan transport.Session, 16)
	reqs := make(chan *Request, 16)
	return func(r *Request) {
		reqs <- r
		sess, err := r.Accept()
		if err != nil {
			return
		}
		sessions <- sess
	}, sessions, reqs
}

func dial(tb testing.TB, ts *testServer, path string, protocols []string, hdr http.Header) (transport.Session, *http.Response, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, rsp, err := Dial(ctx, "https://"+ts.addr+path, clientTLS(tb), protocols, hdr)
	if err == nil {
		tb.Cleanup(func() { _ = sess.CloseWithError(0, "") })
	}
	return sess, rsp, err
}

func receive[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		tb.Fatal("timed out")
		var zero T
		return zero
	}
}

func pair(tb testing.TB) (client, server transport.Session) {
	handler, sessions, _ := acceptAll()
	ts := startServer(tb, serverOptions{protocols: []string{"moq-lite-03"}, handler: handler})
	client, _, err := dial(tb, ts, "/moq", []string{"moq-lite-03"}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	server = receive(tb, sessions)
	tb.Cleanup(func() { _ = server.CloseWithError(0, "") })
	return client, server
}

func TestConformance(t *testing.T) {
	transporttest.Run(t, pair)
}

func TestProtocolNegotiation(t *testing.T) {
	tests := []struct {
		name    string
		offered []string
		server  []string
		want    string
	}{
		{"first offered that the server supports", []string{"moq-lite-04", "moq-lite-03", "moql"}, []string{"moq-lite-03", "moql"}, "moq-lite-03"},
		{"client preference wins", []string{"moql", "moq-lite-03"}, []string{"moq-lite-03", "moql"}, "moql"},
		{"no overlap", []string{"moq-lite-04"}, []string{"moq-lite-03"}, ""},
		{"nothing offered", nil, []string{"moq-lite-03"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler, sessions, reqs := acceptAll()
			ts := startServer(t, serverOptions{protocols: tc.server, handler: handler})
			client, _, err := dial(t, ts, "/", tc.offered, nil)
			if err != nil {
				t.Fatal(err)
			}
			server := receive(t, sessions)
			req := receive(t, reqs)
			if got := fmt.Sprint(req.Protocols); got != fmt.Sprint(tc.offered) && len(tc.offered) > 0 {
				t.Errorf("Request.Protocols = %v, want %v", req.Protocols, tc.offered)
			}
			if req.Protocol() != tc.want {
				t.Errorf("Request.Protocol() = %q, want %q", req.Protocol(), tc.want)
			}
			if client.Protocol() != tc.want || server.Protocol() != tc.want {
				t.Errorf("Protocol() = %q (client), %q (server); want %q", client.Protocol(), server.Protocol(), tc.want)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	handler, sessions, reqs := acceptAll()
	ts := startServer(t, serverOptions{protocols: []string{"moql"}, handler: handler})
	hdr := http.Header{"Origin": {"https://player.other.example"}, "X-Test": {"1"}}
	client, rsp, err := dial(t, ts, "/room/alice?jwt=abc", []string{"moql"}, hdr)
	if err != nil {
		t.Fatalf("cross-origin request rejected: %v", err)
	}
	if rsp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", rsp.StatusCode)
	}
	receive(t, sessions)
	req := receive(t, reqs)
	if req.URL.Path != "/room/alice" || req.URL.Query().Get("jwt") != "abc" {
		t.Errorf("URL = %v, want path /room/alice and jwt=abc", req.URL)
	}
	if req.Header.Get("Origin") != "https://player.other.example" || req.Header.Get("X-Test") != "1" {
		t.Errorf("headers = %v", req.Header)
	}
	// The client socket is bound to the wildcard address: compare ports.
	if req.RemoteAddr.(*net.UDPAddr).Port != client.LocalAddr().(*net.UDPAddr).Port {
		t.Errorf("RemoteAddr = %v, client LocalAddr = %v", req.RemoteAddr, client.LocalAddr())
	}
	if _, err := req.Accept(); !errors.Is(err, ErrDecided) {
		t.Errorf("second Accept error = %v, want ErrDecided", err)
	}
}

func TestReject(t *testing.T) {
	tests := []struct {
		name    string
		handler func(*Request)
		want    int
	}{
		{"explicit status", func(r *Request) { r.Reject(http.StatusForbidden) }, http.StatusForbidden},
		{"undecided", func(*Request) {}, http.StatusNotFound},
		{"success status is not a rejection", func(r *Request) { r.Reject(http.StatusOK) }, http.StatusInternalServerError},
		{"first decision wins", func(r *Request) { r.Reject(http.StatusUnauthorized); r.Reject(http.StatusTeapot) }, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, serverOptions{protocols: []string{"moql"}, handler: tc.handler})
			sess, rsp, err := dial(t, ts, "/", []string{"moql"}, nil)
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("Dial error = %v, want ErrRejected", err)
			}
			if sess != nil {
				t.Error("Dial returned a session with an error")
			}
			if rsp == nil || rsp.StatusCode != tc.want {
				t.Fatalf("response = %v, want status %d", rsp, tc.want)
			}
		})
	}
}

// TestSharedPort dials raw QUIC and WebTransport on the same UDP port.
func TestSharedPort(t *testing.T) {
	handler, sessions, _ := acceptAll()
	ts := startServer(t, serverOptions{protocols: []string{"moq-lite-03"}, handler: handler})
	wtClient, _, err := dial(t, ts, "/", []string{"moq-lite-03"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wtServer := receive(t, sessions)

	conf := clientTLS(t)
	conf.NextProtos = []string{"moq-lite-04"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rawClient, err := moqquic.Dial(ctx, ts.addr, conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rawClient.CloseWithError(0, "")
	rawServer := receive(t, ts.raw)
	defer rawServer.CloseWithError(0, "")

	for _, p := range []struct {
		name           string
		client, server transport.Session
		protocol       string
	}{{"webtransport", wtClient, wtServer, "moq-lite-03"}, {"raw quic", rawClient, rawServer, "moq-lite-04"}} {
		if p.client.Protocol() != p.protocol || p.server.Protocol() != p.protocol {
			t.Errorf("%s: Protocol() = %q/%q, want %q", p.name, p.client.Protocol(), p.server.Protocol(), p.protocol)
		}
		s, err := p.client.OpenUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte(p.name)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		in, err := p.server.AcceptUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(in)
		if err != nil || string(got) != p.name {
			t.Errorf("%s: received %q, %v", p.name, got, err)
		}
	}
}

func TestHTTPFallback(t *testing.T) {
	ts := startServer(t, serverOptions{
		protocols: []string{"moql"},
		handler:   func(r *Request) { t.Error("WebTransport handler called for a GET") },
		opts: []ServerOption{WithHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "hello "+r.URL.Path)
		}))},
	})
	tr := &http3.Transport{TLSClientConfig: clientTLS(t), QUICConfig: moqquic.DefaultConfig()}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ts.addr+"/certificate.sha256", nil)
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	if err != nil || rsp.StatusCode != http.StatusOK || string(body) != "hello /certificate.sha256" {
		t.Fatalf("GET = %d %q, %v", rsp.StatusCode, body, err)
	}
}

// TestConnectionClose covers peers that end the session by closing the QUIC
// connection, with or without a WebTransport code.
func TestConnectionClose(t *testing.T) {
	tests := []struct {
		name      string
		code      uint64
		reason    string
		want      *transport.SessionError
		wantQUICv uint64
	}{
		{"webtransport code", codeToHTTP(77), "moved", &transport.SessionError{Code: 77, Reason: "moved", Remote: true}, 0},
		{"max webtransport code", codeToHTTP(math.MaxUint32), "", &transport.SessionError{Code: math.MaxUint32, Remote: true}, 0},
		{"H3_NO_ERROR", uint64(http3.ErrCodeNoError), "shutdown", &transport.SessionError{Reason: "shutdown", Remote: true}, 0},
		{"other HTTP/3 error", uint64(http3.ErrCodeInternalError), "boom", nil, uint64(http3.ErrCodeInternalError)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler, sessions, _ := acceptAll()
			ts := startServer(t, serverOptions{protocols: []string{"moql"}, handler: handler})
			client, _, err := dial(t, ts, "/", []string{"moql"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			receive(t, sessions)
			conn := receive(t, ts.conns)
			_ = conn.CloseWithError(quicgo.ApplicationErrorCode(tc.code), tc.reason)
			select {
			case <-client.Context().Done():
			case <-time.After(10 * time.Second):
				t.Fatal("client session not closed")
			}
			cause := context.Cause(client.Context())
			var se *transport.SessionError
			if tc.want != nil {
				if !errors.As(cause, &se) || *se != *tc.want {
					t.Fatalf("cause = %#v, want %#v", cause, tc.want)
				}
				return
			}
			if errors.As(cause, &se) {
				t.Fatalf("cause = %v, want no SessionError", cause)
			}
			var ae *quicgo.ApplicationError
			if !errors.As(cause, &ae) || uint64(ae.ErrorCode) != tc.wantQUICv || !ae.Remote {
				t.Fatalf("cause = %v, want the peer's QUIC application error %#x", cause, tc.wantQUICv)
			}
		})
	}
}

func TestServerClose(t *testing.T) {
	handler, sessions, _ := acceptAll()
	ts := startServer(t, serverOptions{protocols: []string{"moql"}, handler: handler})
	client, _, err := dial(t, ts, "/", []string{"moql"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	server := receive(t, sessions)
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []transport.Session{client, server} {
		select {
		case <-s.Context().Done():
		case <-time.After(10 * time.Second):
			t.Fatal("session survived Server.Close")
		}
	}
	if err := receive(t, ts.served); err != nil {
		t.Errorf("ServeQUICConn of a connection closed by Server.Close = %v, want nil", err)
	}
	if _, _, err := dial(t, ts, "/", []string{"moql"}, nil); err == nil {
		t.Fatal("Dial succeeded after Server.Close")
	}
	if err := receive(t, ts.served); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("ServeQUICConn after Close = %v, want http.ErrServerClosed", err)
	}
}

func TestDialErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close() // a port where nothing answers
	tests := []struct {
		name string
		ctx  context.Context
		url  string
		want error
	}{
		{"http scheme", context.Background(), "http://127.0.0.1:4443/", nil},
		{"no host", context.Background(), "https:///path", nil},
		{"unparsable", context.Background(), "https://[::1", nil},
		{"cancelled context", cancelled, "https://" + udp.LocalAddr().String() + "/", context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sess, _, err := Dial(tc.ctx, tc.url, clientTLS(t), nil, nil)
			if err == nil {
				_ = sess.CloseWithError(0, "")
				t.Fatal("Dial succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Dial error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCodeMapping(t *testing.T) {
	tests := []struct {
		code uint32
		http uint64
	}{
		{0, 0x52e4a40fa8db},
		{1, 0x52e4a40fa8dc},
		{0x1d, 0x52e4a40fa8f8},
		{0x1e, 0x52e4a40fa8fa}, // skips the GREASE point 0x52e4a40fa8f9
		{math.MaxUint32, 0x52e5ac983162},
	}
	for _, tc := range tests {
		if got := codeToHTTP(tc.code); got != tc.http {
			t.Errorf("codeToHTTP(%#x) = %#x, want %#x", tc.code, got, tc.http)
		}
		if got, ok := codeFromHTTP(tc.http); !ok || got != tc.code {
			t.Errorf("codeFromHTTP(%#x) = %#x, %t; want %#x", tc.http, got, ok, tc.code)
		}
	}
	for _, h := range []uint64{0, 0x100, 0x52e4a40fa8da, 0x52e4a40fa8f9, 0x52e5ac983163, math.MaxUint64} {
		if got, ok := codeFromHTTP(h); ok {
			t.Errorf("codeFromHTTP(%#x) = %#x, true; want false", h, got)
		}
	}
}

func FuzzCodeFromHTTP(f *testing.F) {
	for _, h := range []uint64{0, 0x100, 0x52e4a40fa8db, 0x52e4a40fa8f9, 0x52e4a40fa8fa, 0x52e5ac983162, 0x52e5ac983163, math.MaxUint64} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h uint64) {
		// Every 32-bit code survives the round trip through HTTP/3 space.
		n := uint32(h)
		if got, ok := codeFromHTTP(codeToHTTP(n)); !ok || got != n {
			t.Fatalf("round trip of %#x = %#x, %t", n, got, ok)
		}
		// Any accepted HTTP/3 code is the image of the code it decodes to.
		if code, ok := codeFromHTTP(h); ok {
			if back := codeToHTTP(code); back != h {
				t.Fatalf("codeToHTTP(codeFromHTTP(%#x)) = %#x", h, back)
			}
		}
	})
}

func TestMapError(t *testing.T) {
	tests := []struct {
		name string
		in   error
		want error
	}{
		{"nil", nil, nil},
		{"eof", io.EOF, io.EOF},
		{"stream reset", &wt.StreamError{ErrorCode: 5, Remote: true}, &transport.StreamError{Code: 5, Remote: true}},
		{"wrapped stream reset", fmt.Errorf("x: %w", &wt.StreamError{ErrorCode: 6}), &transport.StreamError{Code: 6}},
		{"session close", &wt.SessionError{ErrorCode: 9, Message: "m", Remote: true}, &transport.SessionError{Code: 9, Reason: "m", Remote: true}},
		{"connection close with session code", &quicgo.ApplicationError{ErrorCode: quicgo.ApplicationErrorCode(codeToHTTP(4)), ErrorMessage: "r", Remote: true}, &transport.SessionError{Code: 4, Reason: "r", Remote: true}},
	}
	other := &quicgo.ApplicationError{ErrorCode: 0x101}
	tests = append(tests, struct {
		name string
		in   error
		want error
	}{"unrelated connection close", other, other})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mapError(tc.in)
			switch want := tc.want.(type) {
			case *transport.StreamError:
				if se, ok := got.(*transport.StreamError); !ok || *se != *want {
					t.Fatalf("mapError = %#v, want %#v", got, want)
				}
			case *transport.SessionError:
				if se, ok := got.(*transport.SessionError); !ok || *se != *want {
					t.Fatalf("mapError = %#v, want %#v", got, want)
				}
			default:
				if got != tc.want {
					t.Fatalf("mapError = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestIsCleanFIN(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&http3.Error{ErrorCode: http3.ErrCodeDatagramError, ErrorMessage: io.EOF.Error()}, true},
		{&http3.Error{ErrorCode: http3.ErrCodeDatagramError, ErrorMessage: "invalid capsule"}, false},
		{&http3.Error{ErrorCode: http3.ErrCodeInternalError, ErrorMessage: io.EOF.Error()}, false},
		{io.EOF, false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := isCleanFIN(tc.err); got != tc.want {
			t.Errorf("isCleanFIN(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
}

func BenchmarkLoopbackThroughput(b *testing.B) {
	for _, streams := range []int{1, 100} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			transporttest.Throughput(b, pair, streams, 32<<10)
		})
	}
}

// TestCancelReleasesBlockedCalls races the peer closing its session against
// a local cancel of a stream that another goroutine is reading from or
// writing to. webtransport-go parks a Read or Write that saw the peer's
// session-gone reset until its session closes the stream; a stream closed
// locally has already left the session's map, so without the wrapper's
// deadlines that call would never return, and the moq session would never
// finish closing.
func TestCancelReleasesBlockedCalls(t *testing.T) {
	tests := []struct {
		name string
		// block starts the call on the server's stream that must return.
		block func(st transport.Stream) error
		// cancel ends the server's side of the stream.
		cancel func(st transport.Stream)
	}{
		{
			name:  "read",
			block: func(st transport.Stream) error { _, err := st.Read(make([]byte, 1)); return err },
			cancel: func(st transport.Stream) {
				st.CancelRead(0)
				_ = st.Close()
			},
		},
		{
			name: "write",
			// The client never reads, so the write blocks on flow control.
			block: func(st transport.Stream) error { _, err := st.Write(make([]byte, 32<<20)); return err },
			cancel: func(st transport.Stream) {
				st.CancelRead(0)
				st.CancelWrite(0)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler, sessions, reqs := acceptAll()
			ts := startServer(t, serverOptions{protocols: []string{"moql"}, handler: handler})
			for i := range 100 {
				client, _, err := dial(t, ts, "/", []string{"moql"}, nil)
				if err != nil {
					t.Fatal(err)
				}
				receive(t, reqs)
				server := receive(t, sessions)
				cst, err := client.OpenStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cst.Write([]byte{1}); err != nil {
					t.Fatal(err)
				}
				sst, err := server.AcceptStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(sst, make([]byte, 1)); err != nil {
					t.Fatal(err)
				}
				blocked := make(chan error, 1)
				go func() { blocked <- tc.block(sst) }()
				_ = client.CloseWithError(0, "")
				tc.cancel(sst)
				select {
				case err := <-blocked:
					if err == nil {
						t.Fatalf("round %d: %s after the cancel returned no error", i, tc.name)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("round %d: %s still blocked 10 s after the cancel and the peer's close", i, tc.name)
				}
				_ = server.CloseWithError(0, "")
			}
		})
	}
}
