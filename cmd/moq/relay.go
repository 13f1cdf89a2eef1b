package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/sdnotify"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/session"
)

// relaySettings are the settings of `moq relay`.
type relaySettings struct {
	listen              string
	certFiles, keyFiles stringList
	logLevel, logFormat string
	nodeID              uint64
	peers               stringList
	peerInsecure        bool
	internal            string
	drainTimeout        time.Duration
	drainURL            string
	limits              relay.Limits
	cache               relay.CacheLimits
}

// relayFlags returns the flag set of `moq relay` and the settings it fills.
func relayFlags() (*flag.FlagSet, *relaySettings) {
	s := new(relaySettings)
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.StringVar(&s.listen, "listen", relay.DefaultListen, "host:port for UDP (QUIC, WebTransport) and TCP (HTTP, WebSocket)")
	fs.Var(&s.certFiles, "cert", "PEM certificate chain (repeatable, one per --key; chosen by SNI, the first is the default; reloaded on change and SIGHUP); with one, TCP serves HTTPS and wss:// (default: a generated self-signed certificate, renewed before it expires, and plain HTTP)")
	fs.Var(&s.keyFiles, "key", "PEM private key of the --cert in the same position (repeatable)")
	fs.StringVar(&s.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&s.logFormat, "log-format", "text", "log format: text or json")
	fs.Uint64Var(&s.nodeID, "node-id", 0, "this relay's id in a cluster (default: random)")
	fs.Var(&s.peers, "peer", "URL of another relay to cluster with (repeatable); http:// URLs trust the certificate hash the peer serves")
	fs.BoolVar(&s.peerInsecure, "peer-insecure", false, "accept any certificate from https:// peers (testing only)")
	fs.StringVar(&s.internal, "internal-listen", "", "host:port for /metrics (Prometheus), /health, /ready and /debug/pprof/; keep it private (default: off)")
	fs.DurationVar(&s.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM or interrupt, how long sessions told to go away (GOAWAY) may take to leave before the rest are closed; 0 closes them at once")
	fs.StringVar(&s.drainURL, "drain-url", "", "URL the GOAWAY of a drain names as where to reconnect (default: empty, the same URL)")
	registerLimits(fs, &s.limits, &s.cache)
	fs.String("config", "", "TOML file of settings, also accepted as the first argument")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintln(out, "usage: moq relay [CONFIG.toml] [flags]")
		fmt.Fprintln(out, "Every flag is also a key of the config file (repeatable ones take a list) and an environment")
		fmt.Fprintln(out, "variable MOQ_<FLAG> (MOQ_MAX_STREAMS); a flag wins over the environment, which wins over the file.")
		fmt.Fprintln(out, "SIGTERM or an interrupt drains the relay; a second one exits at once. SIGHUP reloads the certificates.")
		fs.PrintDefaults()
	}
	return fs, s
}

// runRelay serves a relay until interrupted.
func runRelay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, s := relayFlags()
	if err := parseSettings(fs, args, stderr, os.Getenv); err != nil {
		return err
	}
	log, err := newLogger(s.logLevel, s.logFormat, stderr)
	if err != nil {
		return err
	}
	certificates, err := pairCertificates(s.certFiles, s.keyFiles)
	if err != nil {
		return err
	}
	cluster := relay.ClusterConfig{NodeID: s.nodeID, Peers: s.peers}
	if s.peerInsecure {
		cluster.DialOptions.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	r, err := relay.New(relay.Config{Listen: s.listen, Certificates: certificates, Logger: log, Cluster: cluster,
		Limits: s.limits, Cache: s.cache, InternalListen: s.internal, DrainTimeout: s.drainTimeout, DrainURL: s.drainURL})
	if err != nil {
		return err
	}
	host, scheme, tcp := hostOf(s.listen), "http", "HTTP and ws://"
	if r.TLS() {
		scheme, tcp = "https", "HTTPS and wss://"
	}
	log.Info("moq relay listening", "host", host, "port", r.Port(), "udp", "QUIC and WebTransport", "tcp", tcp,
		"certificate_sha256", r.Fingerprint())
	if addr := r.InternalAddr(); addr != nil {
		log.Info("internal listener: /metrics, /health, /ready, /debug/pprof/", "addr", addr.String())
	}
	if len(s.peers) > 0 {
		log.Info("clustering", "node", r.NodeID(), "peers", strings.Join(s.peers, ", "))
	}
	log.Info(fmt.Sprintf("try: moq clock pub --url %s://%s:%d/", scheme, host, r.Port()))

	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	notify(log, sdnotify.Ready)
	for {
		select {
		case <-hup:
			if err := r.ReloadCertificates(); err != nil {
				log.Error("reloading the certificates; serving the previous ones", "err", err)
			} else {
				log.Info("certificates reloaded", "certificate_sha256", r.Fingerprint())
			}
			continue
		case err := <-done:
			return err
		case <-ctx.Done():
		}
		break
	}
	notify(log, sdnotify.Stopping)
	return awaitShutdown(ctx, done, s.drainTimeout+slowShutdown, stderr)
}

// notify tells a service manager (systemd Type=notify) the relay's state.
func notify(log *slog.Logger, state string) {
	if err := sdnotify.Notify(state); err != nil {
		log.Warn("telling the service manager", "state", state, "err", err)
	}
}

// pairCertificates pairs the --cert and --key values by position.
func pairCertificates(certFiles, keyFiles []string) ([]relay.Certificate, error) {
	if len(certFiles) != len(keyFiles) {
		return nil, fmt.Errorf("%d --cert and %d --key: give one --key per --cert, in the same order", len(certFiles), len(keyFiles))
	}
	out := make([]relay.Certificate, len(certFiles))
	for i := range certFiles {
		out[i] = relay.Certificate{CertFile: certFiles[i], KeyFile: keyFiles[i]}
	}
	return out, nil
}

// registerLimits adds the relay's limits to fs, their defaults shown.
func registerLimits(fs *flag.FlagSet, l *relay.Limits, c *relay.CacheLimits) {
	fs.IntVar(&l.MaxSessions, "max-sessions", relay.DefaultMaxSessions, "sessions the relay runs at once")
	fs.IntVar(&l.MaxSessionsPerIP, "max-sessions-per-ip", relay.DefaultMaxSessionsPerIP, "sessions from one IP address at once")
	fs.IntVar(&l.MaxStreams, "max-streams", relay.DefaultMaxStreams, "streams of each direction a QUIC or WebTransport peer may have open at once")
	fs.DurationVar(&l.RequestTimeout, "request-timeout", engineDefaults.RequestTimeout, "time a new stream has to send its request, and a subscription to be confirmed upstream")
	fs.DurationVar(&l.HandshakeTimeout, "handshake-timeout", relay.DefaultHandshakeTimeout, "time for HTTP request headers and a session handshake")
	fs.DurationVar(&l.IdleTimeout, "idle-timeout", relay.DefaultIdleTimeout, "close a session that received nothing for this long (QUIC, WebTransport, WebSocket)")
	fs.IntVar(&l.MaxSubscriptions, "max-subscriptions", engineDefaults.MaxSubscriptions, "subscriptions one session may have at once")
	fs.IntVar(&l.MaxPendingSubscriptions, "max-pending-subscriptions", engineDefaults.MaxPendingSubscriptions, "subscriptions of one session waiting for their track upstream at once")
	fs.IntVar(&l.UnconfirmedRate, "unconfirmed-rate", engineDefaults.UnconfirmedRate, "subscriptions per second one session may make to tracks not confirmed yet, past the pending burst")
	fs.IntVar(&l.MaxGroupStreams, "max-group-streams", engineDefaults.MaxGroupStreams, "group streams one session may be writing at once, over all its subscriptions")
	fs.IntVar(&l.MaxFetches, "max-fetches", engineDefaults.MaxFetches, "fetches one session may have at once")
	fs.IntVar(&l.MaxAnnounceInterests, "max-announce-interests", engineDefaults.MaxAnnounceInterests, "announce streams one session may have open at once")
	fs.IntVar(&l.MaxAnnounced, "max-announced", engineDefaults.MaxAnnounced, "broadcasts one session may announce at once")
	fs.DurationVar(&c.MaxAge, "cache-age", moq.DefaultCacheAge, "how long a relayed track keeps its groups")
	fs.Uint64Var(&c.TrackBytes, "cache-track-bytes", moq.DefaultCacheBytes, "payload bytes one relayed track may cache")
	fs.Uint64Var(&c.TotalBytes, "cache-total-bytes", relay.DefaultCacheTotal, "payload bytes all relayed tracks may cache together")
}

// engineDefaults are the session limits a zero value means.
var engineDefaults = session.Limits{}.WithDefaults()

// slowShutdown is how long the relay may take to end its sessions after an
// interrupt before it says so.
const slowShutdown = 15 * time.Second

// awaitShutdown returns the relay's result from done. When it has not come
// within after once ctx is done, it tells the operator how to stop at once and
// writes every goroutine's stack to stderr, to show what the shutdown waits
// for; then it goes on waiting.
func awaitShutdown(ctx context.Context, done <-chan error, after time.Duration, stderr io.Writer) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	timer := time.NewTimer(after)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
	}
	fmt.Fprintf(stderr, "moq relay: sessions still ending %s after the interrupt; interrupt again to exit now. Goroutines:\n", after)
	_ = pprof.Lookup("goroutine").WriteTo(stderr, 1)
	return <-done
}

func hostOf(hostport string) string {
	for i := len(hostport) - 1; i >= 0; i-- {
		if hostport[i] == ':' {
			return hostport[:i]
		}
	}
	return hostport
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
