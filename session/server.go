package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"

	quicgo "github.com/quic-go/quic-go"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/transport"
	quictransport "github.com/moqgo/moq/transport/quic"
	"github.com/moqgo/moq/transport/webtransport"
)

// ErrServerClosed is returned by Server methods after Close.
var ErrServerClosed = errors.New("moq: server closed")

// Server accepts sessions over raw QUIC and WebTransport (HTTP/3) on
// one UDP socket. The TLS ALPN decides: "h3" is WebTransport, the moq ALPNs
// are raw QUIC. Incoming sessions are returned by Accept as Requests, which
// the caller accepts (choosing what the session publishes and consumes) or
// rejects.
type Server struct {
	// TLSConfig holds the server certificate; required.
	TLSConfig *tls.Config
	// QUICConfig overrides the QUIC settings; nil uses sensible defaults.
	QUICConfig *quicgo.Config
	// Versions restricts the versions accepted; empty means DefaultVersions.
	Versions []Version
	// HTTPHandler serves plain HTTP/3 requests on the same port; nil answers 404.
	HTTPHandler http.Handler
	// Logger receives server events. Nil uses slog.Default().
	Logger *slog.Logger

	initOnce sync.Once
	requests chan *Request
	closed   chan struct{}

	mu     sync.Mutex
	isDone bool
	wt     *webtransport.Server
	lns    []*quicgo.Listener
	wg     sync.WaitGroup
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.requests = make(chan *Request)
		s.closed = make(chan struct{})
	})
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// ListenAndServe listens on the UDP address addr and serves until Close.
func (s *Server) ListenAndServe(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	return s.Serve(pc)
}

// Serve accepts QUIC connections on pc until Close; it closes pc on return.
func (s *Server) Serve(pc net.PacketConn) error {
	s.init()
	if s.TLSConfig == nil {
		_ = pc.Close()
		return errors.New("moq: Server.TLSConfig is required")
	}
	protos := Protocols(s.Versions...)
	tlsConf := s.TLSConfig.Clone()
	tlsConf.NextProtos = append([]string{"h3"}, protos...)
	quicConf := s.QUICConfig
	if quicConf == nil {
		quicConf = quictransport.DefaultConfig()
	}

	tr := &quicgo.Transport{Conn: pc}
	ln, err := tr.Listen(tlsConf, quicConf)
	if err != nil {
		_ = tr.Close()
		_ = pc.Close()
		return err
	}
	s.mu.Lock()
	if s.isDone {
		s.mu.Unlock()
		_ = ln.Close()
		_ = tr.Close()
		_ = pc.Close()
		return ErrServerClosed
	}
	if s.wt == nil {
		var opts []webtransport.ServerOption
		if s.HTTPHandler != nil {
			opts = append(opts, webtransport.WithHTTPHandler(s.HTTPHandler))
		}
		s.wt = webtransport.NewServer(protos, s.handleWebTransport, opts...)
	}
	wt := s.wt
	s.lns = append(s.lns, ln)
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		_ = tr.Close()
		_ = pc.Close()
		s.wg.Done()
	}()

	for {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			select {
			case <-s.closed:
				return ErrServerClosed
			default:
				return err
			}
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(conn, wt)
		}()
	}
}

// handleConn dispatches a QUIC connection by ALPN.
func (s *Server) handleConn(conn *quicgo.Conn, wt *webtransport.Server) {
	state := conn.ConnectionState().TLS
	if state.NegotiatedProtocol == "h3" {
		if err := wt.ServeQUICConn(conn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger().Debug("WebTransport connection ended", "remote", conn.RemoteAddr(), "err", err)
		}
		return
	}
	host := state.ServerName
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	req := &Request{
		URL:        &url.URL{Scheme: "moqt", Host: hostForURL(host)},
		Transport:  "quic",
		RemoteAddr: conn.RemoteAddr(),
		accept:     func() (transport.Session, error) { return quictransport.Wrap(conn), nil },
		reject: func(err error) {
			_ = conn.CloseWithError(quicgo.ApplicationErrorCode(lite.ErrorCode(err)), err.Error())
		},
		decided: make(chan struct{}),
	}
	s.offer(req)
}

func hostForURL(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "[" + host + "]"
	}
	return host
}

// handleWebTransport turns a WebTransport CONNECT into a Request and waits for
// the caller's decision (the HTTP/3 handler must answer before returning).
func (s *Server) handleWebTransport(r *webtransport.Request) {
	req := &Request{
		URL:        r.URL,
		Transport:  "webtransport",
		RemoteAddr: r.RemoteAddr,
		Header:     r.Header,
		accept:     r.Accept,
		reject:     func(err error) { r.Reject(RejectStatus(err)) },
		decided:    make(chan struct{}),
	}
	s.offer(req)
	select {
	case <-req.decided:
	case <-r.Context().Done():
	case <-s.closed:
	}
}

// offer hands req to Accept, or refuses it when the server closes first.
func (s *Server) offer(req *Request) {
	select {
	case s.requests <- req:
	case <-s.closed:
		req.Reject(moq.ErrClosed)
	}
}

// Accept waits for the next incoming session request.
func (s *Server) Accept(ctx context.Context) (*Request, error) {
	s.init()
	select {
	case req := <-s.requests:
		return req, nil
	case <-s.closed:
		return nil, ErrServerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops the listeners, closes every connection and waits for the
// server's goroutines. Sessions already accepted end with their connections.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	if s.isDone {
		s.mu.Unlock()
		return nil
	}
	s.isDone = true
	close(s.closed)
	lns := s.lns
	wt := s.wt
	s.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
	var err error
	if wt != nil {
		err = wt.Close()
	}
	s.wg.Wait()
	return err
}

// Request is an incoming session waiting for Accept or Reject.
type Request struct {
	// URL is what the client asked for. For WebTransport it is the CONNECT
	// URL (its path scopes the session on relays); for raw QUIC it is
	// moqt://<server name> with an empty path.
	URL *url.URL
	// Transport is "quic", "webtransport" or "websocket".
	Transport string
	// RemoteAddr is the client's address.
	RemoteAddr net.Addr
	// Header holds the HTTP request headers (WebTransport and WebSocket only).
	Header http.Header

	accept  func() (transport.Session, error)
	reject  func(error)
	once    sync.Once
	decided chan struct{}
}

// NewRequest wraps a transport-level session request, for servers that accept
// sessions on other listeners (such as WebSocket on an HTTP server).
func NewRequest(u *url.URL, transportName string, remote net.Addr, header http.Header,
	accept func() (transport.Session, error), reject func(error)) *Request {
	return &Request{URL: u, Transport: transportName, RemoteAddr: remote, Header: header,
		accept: accept, reject: reject, decided: make(chan struct{})}
}

// Accept completes the transport handshake and the moq-lite handshake, and
// starts the session with cfg. ctx bounds the handshakes.
func (r *Request) Accept(ctx context.Context, cfg *Config) (*Session, error) {
	var conn transport.Session
	var err error = moq.ErrClosed
	r.once.Do(func() {
		conn, err = r.accept()
		close(r.decided)
	})
	if err != nil {
		return nil, fmt.Errorf("moq: accepting %s session from %s: %w", r.Transport, r.RemoteAddr, err)
	}
	return Accept(ctx, conn, cfg)
}

// Reject refuses the session with err's code (for WebTransport, an HTTP status
// derived from it: 401 for ErrUnauthorized, 404 for ErrNotFound, 429 for
// ErrBoundsExceeded, 503 for ErrClosed, else 400).
// It is a no-op once the request was decided.
func (r *Request) Reject(err error) {
	if err == nil {
		err = moq.ErrCancel
	}
	r.once.Do(func() {
		r.reject(err)
		close(r.decided)
	})
}

// RejectStatus is the HTTP status a session request refused with err gets
// over WebTransport and WebSocket.
func RejectStatus(err error) int {
	switch {
	case errors.Is(err, moq.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, moq.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, moq.ErrBoundsExceeded):
		return http.StatusTooManyRequests
	case errors.Is(err, moq.ErrClosed):
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}
