// Package relay is a moq-lite relay: it accepts publishers and subscribers
// over raw QUIC, WebTransport and WebSocket (QMux), announces every broadcast
// to every session under the same root, fans each track out from one upstream
// subscription to any number of subscribers, and clusters with other relays.
package relay

import (
	"context"
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
	"github.com/moqgo/moq/internal/certs"
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
	// Certificates are the relay's certificates, chosen by the name the
	// client asks for (SNI); the first is the default. They are reloaded
	// when their files change and on ReloadCertificates, without a restart.
	// With certificates, the TCP port serves HTTPS and wss://. With none,
	// the relay makes a self-signed certificate for localhost, 127.0.0.1 and
	// ::1, valid for 14 days from yesterday (what browsers accept for
	// serverCertificateHashes) and renewed two days before it expires, and
	// the TCP port serves plain HTTP and ws://.
	Certificates []Certificate
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
	// InternalListen, when set, is the host:port of the operations
	// listener, which serves Prometheus /metrics, /health, /ready and
	// /debug/pprof/. Keep it off the public network.
	InternalListen string
	// DrainTimeout, when positive, makes shutdown graceful: the relay stops
	// accepting sessions, sends GOAWAY to every session that can receive
	// one (moq-lite-04), naming DrainURL ("" tells clients to reconnect to
	// the same URL), and waits up to DrainTimeout for them to leave before
	// it closes the rest. Zero closes every session at once.
	DrainTimeout time.Duration
	DrainURL     string
}

// Certificate names the PEM files of one certificate.
type Certificate struct {
	// CertFile holds the certificate chain, leaf first.
	CertFile string
	// KeyFile holds the leaf's private key.
	KeyFile string
}

// Relay is a running relay server.
type Relay struct {
	log    *slog.Logger
	origin *moq.OriginProducer
	certs  *certs.Manager

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
	stats  session.Stats
	// metrics and ops serve the operations listener, when configured.
	metrics *metrics
	ops     *http.Server
	opsLn   net.Listener
	drain   struct {
		timeout time.Duration
		url     string
	}

	// liveMu guards the sessions running now, by remote IP too, and
	// whether the relay still accepts new ones.
	liveMu   sync.Mutex
	live     map[*session.Session]struct{}
	perIP    map[string]int
	draining bool
	// liveGone is closed and replaced whenever a session leaves.
	liveGone chan struct{}
	// sessionCount counts the sessions admitted, those still in their
	// handshake included.
	sessionCount int

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
	pairs := make([]certs.Pair, len(cfg.Certificates))
	for i, c := range cfg.Certificates {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, errors.New("relay: a certificate needs both a certificate file and a key file")
		}
		pairs[i] = certs.Pair{CertFile: c.CertFile, KeyFile: c.KeyFile}
	}
	manager, err := certs.New(certs.Config{Pairs: pairs, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	r := &Relay{
		log:    log,
		origin: moq.NewOrigin(),
		certs:  manager,
		closed: make(chan struct{}),
	}
	if err := r.bind(listen); err != nil {
		return nil, err
	}
	r.framings = cfg.WebSocketFramings
	r.cluster = cfg.Cluster.withNodeID()
	r.limits = cfg.Limits.withDefaults()
	r.cache = cfg.Cache.policy()
	r.metrics = newMetrics(&r.stats, r.cache.Budget)
	r.drain.timeout, r.drain.url = cfg.DrainTimeout, cfg.DrainURL
	r.live = make(map[*session.Session]struct{})
	r.perIP = make(map[string]int)
	r.liveGone = make(chan struct{})
	if cfg.InternalListen != "" {
		ln, err := net.Listen("tcp", cfg.InternalListen)
		if err != nil {
			r.closeSockets()
			return nil, fmt.Errorf("relay: internal listener on %s: %w", cfg.InternalListen, err)
		}
		r.opsLn = ln
		r.ops = &http.Server{Handler: r.opsHandler(), ReadHeaderTimeout: r.limits.HandshakeTimeout,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	}
	r.sessCtx, r.cancelSessions = context.WithCancel(context.Background())
	r.mux = http.NewServeMux()
	r.mux.HandleFunc("GET /certificate.sha256", r.serveFingerprint)
	// Failed handshakes and bad requests from the internet are routine:
	// they go to the debug log.
	httpLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	r.http = &http.Server{Handler: http.HandlerFunc(r.serveHTTP), ErrorLog: httpLog,
		ReadHeaderTimeout: r.limits.HandshakeTimeout, IdleTimeout: r.limits.IdleTimeout}
	if !manager.SelfSigned() {
		r.http.TLSConfig = manager.TLSConfig()
		r.http.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
	}
	quicConf := quictransport.DefaultConfig()
	quicConf.MaxIncomingStreams = int64(r.limits.MaxStreams)
	quicConf.MaxIncomingUniStreams = int64(r.limits.MaxStreams)
	quicConf.MaxIdleTimeout = r.limits.IdleTimeout
	quicConf.KeepAlivePeriod = r.limits.IdleTimeout / 3
	r.server = &session.Server{
		TLSConfig:  manager.TLSConfig(),
		QUICConfig: quicConf,
		Logger:     log,
	}
	return r, nil
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

// Fingerprint is the SHA-256 of the relay's default certificate, as 64
// lowercase hex digits. It changes when the certificate is reloaded or
// renewed.
func (r *Relay) Fingerprint() string { return r.certs.Fingerprint() }

// TLS reports whether the TCP port serves HTTPS and wss:// (the relay has
// certificates of its own) rather than plain HTTP and ws://.
func (r *Relay) TLS() bool { return !r.certs.SelfSigned() }

// ReloadCertificates reads the certificate files again and serves them to
// new sessions; on error the previous certificates stay. With a self-signed
// certificate it renews the certificate only when it is due.
func (r *Relay) ReloadCertificates() error { return r.certs.Reload() }

// Origin is the relay's set of broadcasts; sessions publish into it and
// subscribe from it. Local code may publish or consume here too.
func (r *Relay) Origin() *moq.OriginProducer { return r.origin }

// InternalAddr is the address of the operations listener, nil without one.
func (r *Relay) InternalAddr() net.Addr {
	if r.opsLn == nil {
		return nil
	}
	return r.opsLn.Addr()
}

// Run serves until ctx is done or Close is called, then shuts everything
// down and returns once every session has ended.
func (r *Relay) Run(ctx context.Context) error {
	errs := make(chan error, len(r.udp)+len(r.tcp)+2) // every server, the internal listener and the certificates
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
		r.wg.Go(func() {
			serve := r.http.Serve
			if r.http.TLSConfig != nil {
				serve = func(ln net.Listener) error { return r.http.ServeTLS(ln, "", "") }
			}
			if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("relay: HTTP on %s: %w", ln.Addr(), err)
			}
		})
	}
	certCtx, stopCerts := context.WithCancel(context.Background())
	defer stopCerts()
	r.wg.Go(func() {
		if err := r.certs.Run(certCtx); err != nil {
			errs <- fmt.Errorf("relay: watching the certificates: %w", err)
		}
	})
	if r.ops != nil {
		r.wg.Go(func() {
			if err := r.ops.Serve(r.opsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("relay: internal listener on %s: %w", r.opsLn.Addr(), err)
			}
		})
	}
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		r.acceptSessions(r.sessCtx)
	}()
	r.wg.Go(func() { r.countBroadcasts(r.sessCtx) })
	r.runPeers(r.sessCtx)

	var err error
	select {
	case <-ctx.Done():
	case <-r.closed:
	case err = <-errs:
	}
	r.drainSessions()
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
	if r.ops != nil {
		_ = r.ops.Shutdown(shutdownCtx)
	}
	stopCerts()
	r.wg.Wait()
	return err
}

// drainSessions stops accepting sessions and, when the relay drains, sends
// GOAWAY to every session that can receive one and waits for the sessions
// to leave, up to the drain timeout.
func (r *Relay) drainSessions() {
	r.liveMu.Lock()
	r.draining = true
	sessions := make([]*session.Session, 0, len(r.live))
	for sess := range r.live {
		sessions = append(sessions, sess)
	}
	r.liveMu.Unlock()
	if r.drain.timeout <= 0 || len(sessions) == 0 {
		return
	}
	r.log.Info("draining", "sessions", len(sessions), "timeout", r.drain.timeout, "goaway", r.drain.url)
	ctx, cancel := context.WithTimeout(context.Background(), r.drain.timeout)
	defer cancel()
	var told sync.WaitGroup
	for _, sess := range sessions {
		told.Go(func() {
			// GoAway returns once the client left or ctx ended; versions
			// without GOAWAY refuse at once and are closed at the end.
			if err := sess.GoAway(ctx, r.drain.url); err != nil && !errors.Is(err, moq.ErrUnsupported) {
				r.log.Debug("goaway failed", "err", err)
			}
		})
	}
	for {
		r.liveMu.Lock()
		n, gone := len(r.live), r.liveGone
		r.liveMu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-gone:
			continue
		case <-ctx.Done():
			r.log.Info("drain timeout: closing the sessions left", "sessions", n)
		}
		break
	}
	cancel()
	told.Wait()
}

// accepting reports whether the relay accepts new sessions.
func (r *Relay) accepting() bool {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	return !r.draining
}

// admit counts a new session from remote against the limits; it returns
// why the session must be refused, if it must, and otherwise a function
// that counts it out.
func (r *Relay) admit(remote net.Addr) (leave func(), reason string, err error) {
	ip := remoteIP(remote)
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	switch {
	case r.draining:
		return nil, "draining", fmt.Errorf("%w: the relay is shutting down", moq.ErrClosed)
	case r.sessionCount >= r.limits.MaxSessions:
		return nil, "max_sessions", fmt.Errorf("%w: %d sessions", moq.ErrBoundsExceeded, r.limits.MaxSessions)
	case r.perIP[ip] >= r.limits.MaxSessionsPerIP:
		return nil, "max_sessions_per_ip", fmt.Errorf("%w: %d sessions from %s", moq.ErrBoundsExceeded, r.limits.MaxSessionsPerIP, ip)
	}
	r.sessionCount++
	r.perIP[ip]++
	return func() {
		r.liveMu.Lock()
		defer r.liveMu.Unlock()
		r.sessionCount--
		if r.perIP[ip]--; r.perIP[ip] == 0 {
			delete(r.perIP, ip)
		}
	}, "", nil
}

// remoteIP is the IP address of a peer, or its address's text.
func remoteIP(addr net.Addr) string {
	switch a := addr.(type) {
	case *net.UDPAddr:
		return a.IP.String()
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// register adds a running session to those drain reaches; the returned
// function removes it.
func (r *Relay) register(sess *session.Session) (unregister func()) {
	r.liveMu.Lock()
	r.live[sess] = struct{}{}
	r.liveMu.Unlock()
	return func() {
		r.liveMu.Lock()
		delete(r.live, sess)
		close(r.liveGone)
		r.liveGone = make(chan struct{})
		r.liveMu.Unlock()
	}
}

// countBroadcasts keeps the broadcasts gauge up to date until ctx is done.
func (r *Relay) countBroadcasts(ctx context.Context) {
	anns := r.origin.Consume().Announcements()
	defer anns.Close()
	active := make(map[moq.Path]bool)
	for a, err := range anns.All(ctx) {
		if err != nil {
			return
		}
		if a.Broadcast != nil {
			active[a.Path] = true
		} else {
			delete(active, a.Path)
		}
		r.metrics.broadcasts.Set(float64(len(active)))
	}
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
	start := time.Now()
	root := moq.NewPath(req.URL.Path)
	log := r.log.With("transport", req.Transport, "remote", req.RemoteAddr.String(), "root", root.String())
	refuse := func(reason string, err error) {
		r.metrics.refused.WithLabelValues(reason).Inc()
		log.Info("session refused", "reason", reason, "err", err)
		req.Reject(err)
	}
	leave, reason, err := r.admit(req.RemoteAddr)
	if err != nil {
		refuse(reason, err)
		return
	}
	defer leave()
	scoped, err := r.origin.WithRoot(root)
	if err != nil {
		refuse("scope", err)
		return
	}

	hsCtx, cancel := context.WithTimeout(ctx, r.limits.HandshakeTimeout)
	sess, err := req.Accept(hsCtx, r.sessionConfig(scoped, log))
	cancel()
	if err != nil {
		r.metrics.refused.WithLabelValues("handshake").Inc()
		log.Info("session refused", "reason", "handshake", "err", err)
		return
	}
	version := sess.Version().String()
	r.metrics.handshake.Observe(time.Since(start).Seconds())
	r.metrics.accepted.WithLabelValues(req.Transport, version).Inc()
	open := r.metrics.sessions.WithLabelValues(req.Transport, version)
	open.Inc()
	defer open.Dec()
	unregister := r.register(sess)
	defer unregister()
	log = log.With("version", version)
	log.Info("session started")
	select {
	case <-sess.Done():
	case <-ctx.Done():
	}
	_ = sess.Close()
	if err := sess.Err(); err != nil {
		log.Info("session ended", "reason", err, "duration", time.Since(start).Round(time.Millisecond))
	} else {
		log.Info("session ended", "reason", "closed", "duration", time.Since(start).Round(time.Millisecond))
	}
}

// sessionConfig is the configuration of a session that sees the relay's
// broadcasts through scope, as clients' and cluster peers' sessions do.
func (r *Relay) sessionConfig(scope *moq.OriginProducer, log *slog.Logger) *session.Config {
	return &session.Config{Publish: scope.Consume(), Consume: scope, Logger: log, NodeID: r.cluster.NodeID,
		Limits: r.limits.Limits, Cache: r.cache, Stats: &r.stats}
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
		func(err error) { http.Error(w, err.Error(), session.RejectStatus(err)) })
	r.serveSession(r.sessCtx, mreq)
}

// serveFingerprint answers GET /certificate.sha256 with exactly the 64 hex
// digits of the certificate hash, readable from pages of any origin.
func (r *Relay) serveFingerprint(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(r.Fingerprint()))
}
