package webtransport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"

	"github.com/dunglas/httpsfv"
	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/transport"
)

// ErrDecided is returned by [Request.Accept] when the request was already
// accepted or rejected.
var ErrDecided = errors.New("webtransport: request already accepted or rejected")

// Server accepts WebTransport sessions on QUIC connections that the caller
// accepted, typically from a listener shared with raw QUIC: connections that
// negotiated the "h3" ALPN are handed to [Server.ServeQUICConn].
//
// The listener's quic-go config must enable datagrams and
// EnableStreamResetPartialDelivery, as transport/quic's DefaultConfig does.
// Any Origin is accepted: moq relays serve pages from other origins.
type Server struct {
	protocols []string
	handler   func(*Request)
	fallback  http.Handler
	wt        *wt.Server

	mu     sync.Mutex
	closed bool
	active sync.WaitGroup // ServeQUICConn calls and session finishers
}

// ServerOption configures a [Server].
type ServerOption func(*Server)

// WithHTTPHandler serves requests other than WebTransport CONNECTs (plain
// HTTP/3 requests on the same connections) with h. Without it they get
// 404 Not Found.
func WithHTTPHandler(h http.Handler) ServerOption {
	return func(s *Server) { s.fallback = h }
}

type connKey struct{}

// NewServer returns a server that negotiates one of protocols (the first
// entry of the client's WT-Available-Protocols list that is in protocols)
// and passes each session request to handler.
func NewServer(protocols []string, handler func(*Request), opts ...ServerOption) *Server {
	s := &Server{protocols: slices.Clone(protocols), handler: handler}
	for _, opt := range opts {
		opt(s)
	}
	s.wt = &wt.Server{
		H3: &http3.Server{
			Handler: http.HandlerFunc(s.serveHTTP),
			ConnContext: func(ctx context.Context, conn *quicgo.Conn) context.Context {
				return context.WithValue(ctx, connKey{}, conn)
			},
		},
		ApplicationProtocols: s.protocols,
		CheckOrigin:          func(*http.Request) bool { return true },
	}
	return s
}

// ServeQUICConn serves HTTP/3 and WebTransport on conn until the connection
// is closed or the server is closed, when it returns http.ErrServerClosed.
func (s *Server) ServeQUICConn(conn *quicgo.Conn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.CloseWithError(quicgo.ApplicationErrorCode(http3.ErrCodeNoError), "")
		return http.ErrServerClosed
	}
	s.active.Add(1)
	s.mu.Unlock()
	defer s.active.Done()
	if err := s.wt.ServeQUICConn(conn); err != nil {
		return fmt.Errorf("webtransport: %w", err)
	}
	return nil
}

// Close closes every connection served and waits for ServeQUICConn calls and
// session cleanup to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := s.wt.Close()
	s.active.Wait()
	return err
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	conn, _ := r.Context().Value(connKey{}).(*quicgo.Conn)
	if r.Method != http.MethodConnect || conn == nil || (r.Proto != "webtransport-h3" && r.Proto != "webtransport") {
		if s.fallback != nil {
			s.fallback.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
		return
	}
	req := &Request{
		URL:        r.URL,
		Header:     r.Header,
		Protocols:  offeredProtocols(r.Header),
		RemoteAddr: conn.RemoteAddr(),
		srv:        s,
		w:          w,
		r:          r,
		conn:       conn,
	}
	s.handler(req)
	req.Reject(http.StatusNotFound) // no-op when the handler decided
}

// offeredProtocols parses WT-Available-Protocols, a structured-field list of
// strings; a malformed header offers nothing.
func offeredProtocols(h http.Header) []string {
	values := h.Values("WT-Available-Protocols")
	if len(values) == 0 {
		return nil
	}
	list, err := httpsfv.UnmarshalList(values)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, member := range list {
		item, ok := member.(httpsfv.Item)
		if !ok {
			return nil
		}
		p, ok := item.Value.(string)
		if !ok {
			return nil
		}
		out = append(out, p)
	}
	return out
}

// Request is a WebTransport session request. The handler must call Accept or
// Reject before returning; a request left undecided is rejected with 404.
type Request struct {
	// URL is the request target; its Path and RawQuery select the broadcast
	// and carry any token.
	URL *url.URL
	// Header holds the request headers.
	Header http.Header
	// Protocols lists the client's WT-Available-Protocols in preference order.
	Protocols []string
	// RemoteAddr is the client's address.
	RemoteAddr net.Addr

	srv  *Server
	w    http.ResponseWriter
	r    *http.Request
	conn *quicgo.Conn

	mu      sync.Mutex
	decided bool
}

// Context is cancelled when the request stream or its connection closes.
func (r *Request) Context() context.Context { return r.r.Context() }

// Protocol is the protocol Accept will select: the first offered protocol the
// server supports, or "" when there is none.
func (r *Request) Protocol() string {
	for _, p := range r.Protocols {
		if slices.Contains(r.srv.protocols, p) {
			return p
		}
	}
	return ""
}

// Accept completes the handshake with 200 OK and returns the session. The
// session owns the QUIC connection: it is closed when the session ends.
func (r *Request) Accept() (transport.Session, error) {
	if !r.decide() {
		return nil, ErrDecided
	}
	sess, err := r.srv.wt.Upgrade(r.w, r.r)
	if err != nil {
		r.w.WriteHeader(http.StatusBadRequest)
		return nil, fmt.Errorf("webtransport: upgrade: %w", err)
	}
	r.srv.active.Add(1)
	return wrap(sess, r.conn, r.srv.active.Done), nil
}

// Reject answers with status, which should be 3xx, 4xx or 5xx; other values
// are replaced by 500. It is a no-op after Accept or Reject.
func (r *Request) Reject(status int) {
	if !r.decide() {
		return
	}
	if status < 300 || status > 599 {
		status = http.StatusInternalServerError
	}
	r.w.WriteHeader(status)
}

func (r *Request) decide() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decided {
		return false
	}
	r.decided = true
	return true
}
