package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/session"
)

// runRelay serves a relay until interrupted.
func runRelay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	listen := fs.String("listen", relay.DefaultListen, "host:port for UDP (QUIC, WebTransport) and TCP (HTTP)")
	certFile := fs.String("cert", "", "PEM certificate chain (default: a generated self-signed certificate)")
	keyFile := fs.String("key", "", "PEM private key for --cert")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	nodeID := fs.Uint64("node-id", 0, "this relay's id in a cluster (default: random)")
	var peers stringList
	fs.Var(&peers, "peer", "URL of another relay to cluster with (repeatable); http:// URLs trust the certificate hash the peer serves")
	peerInsecure := fs.Bool("peer-insecure", false, "accept any certificate from https:// peers (testing only)")
	var limits relay.Limits
	var cache relay.CacheLimits
	registerLimits(fs, &limits, &cache)
	fs.String("config", "", "TOML file of settings, also accepted as the first argument")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintln(out, "usage: moq relay [CONFIG.toml] [flags]")
		fmt.Fprintln(out, "Every flag is also a key of the config file (peer takes a list) and an environment")
		fmt.Fprintln(out, "variable MOQ_<FLAG> (MOQ_MAX_STREAMS); a flag wins over the environment, which wins over the file.")
		fs.PrintDefaults()
	}
	if err := parseSettings(fs, args, stderr, os.Getenv); err != nil {
		return err
	}
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	cluster := relay.ClusterConfig{NodeID: *nodeID, Peers: peers}
	if *peerInsecure {
		cluster.DialOptions.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	r, err := relay.New(relay.Config{Listen: *listen, CertFile: *certFile, KeyFile: *keyFile, Logger: log, Cluster: cluster,
		Limits: limits, Cache: cache})
	if err != nil {
		return err
	}
	host := hostOf(*listen)
	fmt.Fprintf(stderr, "moq relay listening on %s port %d (UDP: QUIC and WebTransport; TCP: HTTP)\n", host, r.Port())
	fmt.Fprintf(stderr, "certificate sha256: %s\n", r.Fingerprint())
	if len(peers) > 0 {
		fmt.Fprintf(stderr, "cluster node %d, peers: %s\n", r.NodeID(), strings.Join(peers, ", "))
	}
	fmt.Fprintf(stderr, "try: moq clock pub --url http://%s:%d/\n", host, r.Port())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return awaitShutdown(ctx, done, slowShutdown, stderr)
}

// registerLimits adds the relay's limits to fs, their defaults shown.
func registerLimits(fs *flag.FlagSet, l *relay.Limits, c *relay.CacheLimits) {
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
