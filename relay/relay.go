// Package relay is a moq-lite relay: it accepts publishers and subscribers
// over raw QUIC, WebTransport and WebSocket (QMux), announces every broadcast
// to every session under the same root, fans each track out from one upstream
// subscription to any number of subscribers, and clusters with other relays.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/session"
	"github.com/moqgo/moq/transport"
	"github.com/moqgo/moq/transport/qmux"
	quictransport "github.com/moqgo/moq/transport/quic"
)

// DefaultListen is where a relay listens when Config.Listen is empty.
const DefaultListen = "localhost:4443"

// Config configures a relay.
type Config struct {
	// Listen is the host:port for both UDP (QUIC and WebTransport) and TCP
	// (HTTP). "localhost" binds 127.0.0.1 and ::1. Port 0 picks a free port,
	// the same for UDP and TCP. Empty means DefaultListen.
	Listen string
	// CertFile and KeyFile hold a PEM certificate chain and key. When empty,
	// the relay generates a self-signed certificate for localhost, 127.0.0.1
	// and ::1, valid for 14 days from yesterday (what browsers accept for
	// serverCertificateHashes).
	CertFile, KeyFile string
	// Logger receives relay events; nil uses slog.Default().
	Logger *slog.Logger
	// WebSocketFramings orders the QMux framings offered to WebSocket
	// clients, most preferred first; nil means qmux-00, then the legacy
	// "webtransport" framing.
	WebSocketFramings []qmux.Framing
	// Cluster connects the relay to other relays; see ClusterConfig.
	Cluster ClusterConfig
	// Limits bound what one peer can make the relay hold.
	Limits Limits
	// Cache bounds the caches of the tracks the relay relays.
	Cache CacheLimits
}

// Relay is a running relay server.
type Relay struct {
	log         *slog.Logger
	origin      *moq.OriginProducer
	cert        tls.Certificate
	fingerprint string

	server   *session.Server
	http     *http.Server
	mux      *http.ServeMux
	framings []qmux.Framing
	udp      []net.PacketConn
	tcp      []net.Listener
	port     int

	// sessCtx ends every session when the relay shuts down.
	sessCtx        context.Context
	cancelSessions context.CancelFunc
	// wsMu guards wsClosed; wsWG counts WebSocket sessions, which run on
	// hijacked HTTP connections that http.Server.Shutdown does not track.
	wsMu     sync.Mutex
	wsClosed bool
	wsWG     sync.WaitGroup

	// cluster is the relay's cluster configuration, with its node id set.
	cluster ClusterConfig
	// limits and cache are what every session gets: the limits with their
	// defaults, and the policy of the tracks it relays.
	limits Limits
	cache  moq.CachePolicy

	wg sync.WaitGroup
	// sessions counts the QUIC and WebTransport sessions, which shutdown
	// lets close cleanly before it closes the sockets.
	sessions  sync.WaitGroup
	closeOnce sync.Once
	closed    chan struct{}
}

// New binds the relay's sockets; Run serves them.
func New(cfg Config) (*Relay, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cert, err := loadCertificate(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	r := &Relay{
		log:         log,
		origin:      moq.NewOrigin(),
		cert:        cert,
		fingerprint: selfsign.Fingerprint(cert),
		closed:      make(chan struct{}),
	}
	if err := r.bind(listen); err != nil {
		return nil, err
	}
	r.framings = cfg.WebSocketFramings
	r.cluster = cfg.Cluster.withNodeID()
	r.limits = cfg.Limits.withDefaults()
	r.cache = cfg.Cache.policy()
	r.sessCtx, r.cancelSessions = context.WithCancel(context.Background())
	r.mux = http.NewServeMux()
	r.mux.HandleFunc("GET /certificate.sha256", r.serveFingerprint)
	r.http = &http.Server{Handler: http.HandlerFunc(r.serveHTTP),
		ReadHeaderTimeout: r.limits.HandshakeTimeout, IdleTimeout: r.limits.IdleTimeout}
	quicConf := quictransport.DefaultConfig()
	quicConf.MaxIncomingStreams = int64(r.limits.MaxStreams)
	quicConf.MaxIncomingUniStreams = int64(r.limits.MaxStreams)
	quicConf.MaxIdleTimeout = r.limits.IdleTimeout
	quicConf.KeepAlivePeriod = r.limits.IdleTimeout / 3
	r.server = &session.Server{
		TLSConfig:  &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		QUICConfig: quicConf,
		Logger:     log,
	}
	return r, nil
}

func loadCertificate(certFile, keyFile string) (tls.Certificate, error) {
	switch {
	case certFile == "" && keyFile == "":
		return selfsign.Default(time.Now())
	case certFile == "" || keyFile == "":
		return tls.Certificate{}, errors.New("relay: give both a certificate file and a key file, or neither for a self-signed certificate")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: loading the certificate: %w", err)
	}
	return cert, nil
}

// bind opens UDP and TCP sockets on the same port for every address of host.
func (r *Relay) bind(listen string) error {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("relay: bad listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("relay: bad listen port %q", portStr)
	}
	hosts := []string{host}
	if host == "localhost" {
		hosts = []string{"127.0.0.1", "::1"}
	}
	// With port 0, the first UDP socket picks the port and every other socket
	// must get the same one; retry a few times if it is taken on another.
	for attempt := 0; ; attempt++ {
		err := r.bindPort(hosts, port)
		if err == nil {
			return nil
		}
		r.closeSockets()
		if port != 0 || attempt == 10 {
			return fmt.Errorf("relay: listening on %s: %w", listen, err)
		}
	}
}

func (r *Relay) bindPort(hosts []string, port int) error {
	for i, host := range hosts {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			if i > 0 && isAddrUnavailable(err) {
				// ::1 may not exist (IPv6 disabled); 127.0.0.1 is enough.
				continue
			}
			return err
		}
		r.udp = append(r.udp, pc)
		if port == 0 {
			port = pc.LocalAddr().(*net.UDPAddr).Port
			addr = net.JoinHostPort(host, strconv.Itoa(port))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		r.tcp = append(r.tcp, ln)
	}
	r.port = port
	return nil
}

func isAddrUnavailable(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)
}

func (r *Relay) closeSockets() {
	for _, pc := range r.udp {
		_ = pc.Close()
	}
	for _, ln := range r.tcp {
		_ = ln.Close()
	}
	r.udp, r.tcp = nil, nil
}

// Port is the UDP and TCP port the relay listens on.
func (r *Relay) Port() int { return r.port }

// Addrs returns the UDP addresses the relay listens on.
func (r *Relay) Addrs() []net.Addr {
	out := make([]net.Addr, len(r.udp))
	for i, pc := range r.udp {
		out[i] = pc.LocalAddr()
	}
	return out
}

// Fingerprint is the SHA-256 of the relay's certificate, as 64 lowercase hex digits.
func (r *Relay) Fingerprint() string { return r.fingerprint }

// Origin is the relay's set of broadcasts; sessions publish into it and
// subscribe from it. Local code may publish or consume here too.
func (r *Relay) Origin() *moq.OriginProducer { return r.origin }

// Run serves until ctx is done or Close is called, then shuts everything
// down and returns once every session has ended.
func (r *Relay) Run(ctx context.Context) error {
	errs := make(chan error, len(r.udp)+len(r.tcp))
	for _, pc := range r.udp {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.server.Serve(pc); err != nil && !errors.Is(err, session.ErrServerClosed) {
				errs <- fmt.Errorf("relay: QUIC on %s: %w", pc.LocalAddr(), err)
			}
		}()
	}
	for _, ln := range r.tcp {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("relay: HTTP on %s: %w", ln.Addr(), err)
			}
		}()
	}
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		r.acceptSessions(r.sessCtx)
	}()
	r.runPeers(r.sessCtx)

	var err error
	select {
	case <-ctx.Done():
	case <-r.closed:
	case err = <-errs:
	}
	r.cancelSessions()
	// Sessions close cleanly (each within its close timeout) while the
	// sockets are still open, so clients see a clean end rather than a
	// connection dropped by the listener's close.
	<-accepting
	r.sessions.Wait()
	_ = r.server.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.http.Shutdown(shutdownCtx)
	r.wsMu.Lock()
	r.wsClosed = true
	r.wsMu.Unlock()
	r.wsWG.Wait()
	r.wg.Wait()
	return err
}

// Close stops a running relay; Run returns.
func (r *Relay) Close() {
	r.closeOnce.Do(func() { close(r.closed) })
}

func (r *Relay) acceptSessions(ctx context.Context) {
	for {
		req, err := r.server.Accept(ctx)
		if err != nil {
			return
		}
		r.sessions.Add(1)
		go func() {
			defer r.sessions.Done()
			r.serveSession(ctx, req)
		}()
	}
}

// serveSession runs one client's session. The URL path is the session's root:
// it sees and publishes only the broadcasts under it, with paths relative to it.
func (r *Relay) serveSession(ctx context.Context, req *session.Request) {
	root := moq.NewPath(req.URL.Path)
	scoped, err := r.origin.WithRoot(root)
	if err != nil {
		req.Reject(err)
		return
	}
	log := r.log.With("transport", req.Transport, "remote", req.RemoteAddr.String(), "root", root.String())

	hsCtx, cancel := context.WithTimeout(ctx, r.limits.HandshakeTimeout)
	sess, err := req.Accept(hsCtx, r.sessionConfig(scoped, log))
	cancel()
	if err != nil {
		log.Info("session refused", "err", err)
		return
	}
	log.Info("session started", "version", sess.Version().String())
	select {
	case <-sess.Done():
	case <-ctx.Done():
	}
	_ = sess.Close()
	if err := sess.Err(); err != nil {
		log.Info("session ended", "err", err)
	} else {
		log.Info("session closed")
	}
}

// sessionConfig is the configuration of a session that sees the relay's
// broadcasts through scope, as clients' and cluster peers' sessions do.
func (r *Relay) sessionConfig(scope *moq.OriginProducer, log *slog.Logger) *session.Config {
	return &session.Config{Publish: scope.Consume(), Consume: scope, Logger: log, NodeID: r.cluster.NodeID,
		Limits: r.limits.Limits, Cache: r.cache}
}

// serveHTTP serves WebSocket sessions (QMux) on any path, and the HTTP
// endpoints otherwise.
func (r *Relay) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if qmux.Offered(req) {
		r.serveWebSocket(w, req)
		return
	}
	r.mux.ServeHTTP(w, req)
}

// serveWebSocket runs one WebSocket session on the handler's goroutine: the
// URL path scopes it as for WebTransport.
func (r *Relay) serveWebSocket(w http.ResponseWriter, req *http.Request) {
	r.wsMu.Lock()
	if r.wsClosed {
		r.wsMu.Unlock()
		http.Error(w, "relay shutting down", http.StatusServiceUnavailable)
		return
	}
	r.wsWG.Add(1)
	r.wsMu.Unlock()
	defer r.wsWG.Done()

	remote, _ := net.ResolveTCPAddr("tcp", req.RemoteAddr)
	u := *req.URL
	u.Scheme, u.Host = "ws", req.Host
	mreq := session.NewRequest(&u, "websocket", remote, req.Header,
		func() (transport.Session, error) {
			return qmux.AcceptWithOptions(w, req, session.Protocols(), &qmux.AcceptOptions{
				Framings: r.framings, IdleTimeout: r.limits.IdleTimeout, KeepAlivePeriod: r.limits.IdleTimeout / 3})
		},
		func(err error) { http.Error(w, err.Error(), http.StatusForbidden) })
	r.serveSession(r.sessCtx, mreq)
}

// serveFingerprint answers GET /certificate.sha256 with exactly the 64 hex
// digits of the certificate hash, readable from pages of any origin.
func (r *Relay) serveFingerprint(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(r.fingerprint))
}
