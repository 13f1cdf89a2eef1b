package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/transport"
	"github.com/moqgo/moq/transport/qmux"
	quictransport "github.com/moqgo/moq/transport/quic"
	"github.com/moqgo/moq/transport/webtransport"
)

// DialOptions configure how Dial reaches a server.
type DialOptions struct {
	// TLSConfig is the base client TLS configuration (root CAs, client
	// certificates, InsecureSkipVerify...). Nil uses the system roots.
	TLSConfig *tls.Config
	// Fingerprint, when set, trusts exactly the server certificate whose
	// SHA-256 is this hex string, as for a relay's self-signed certificate.
	Fingerprint string
	// QUICConfig overrides the QUIC settings; nil uses sensible defaults.
	QUICConfig *quicgo.Config
	// HTTPClient fetches /certificate.sha256 for http:// URLs; nil uses a
	// client with no proxy.
	HTTPClient *http.Client
	// WebSocketFallback makes Dial race WebSocket against WebTransport for
	// https:// and http:// URLs, as the browser clients do: WebTransport
	// starts first, WebSocket (QMux, on the same host and path) 200 ms later,
	// and the first session up wins. A URL where WebSocket won before gets no
	// head start.
	WebSocketFallback bool
}

// webSocketHeadStart is how long WebTransport may try alone before a racing
// WebSocket attempt starts.
const webSocketHeadStart = 200 * time.Millisecond

// webSocketWon remembers the URLs where WebSocket won a race.
var webSocketWon sync.Map

// ErrUnsupportedURL reports a URL whose scheme Dial cannot use.
var ErrUnsupportedURL = errors.New("moq: unsupported URL")

// Dial connects to a MoQ server and starts a session.
//
// Supported URLs:
//   - https://host:port/path — WebTransport over HTTP/3; the path scopes the
//     session on relays.
//   - http://host:port/path — local development: fetches the server's
//     certificate hash over plain HTTP from /certificate.sha256, then connects
//     over WebTransport trusting exactly that certificate, as browsers do.
//   - moqt://host:port and moql://host:port — raw QUIC with moq ALPNs.
//   - ws://host:port/path and wss://host:port/path — WebSocket with QMux, for
//     networks or servers without QUIC.
//
// ctx bounds connecting and the handshake.
func Dial(ctx context.Context, rawURL string, cfg *Config) (*Session, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	conn, err := dialTransport(ctx, rawURL, cfg)
	if err != nil {
		return nil, err
	}
	return Connect(ctx, conn, cfg)
}

func dialTransport(ctx context.Context, rawURL string, cfg *Config) (transport.Session, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrUnsupportedURL, rawURL, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w %q: no host (want e.g. https://localhost:4443/)", ErrUnsupportedURL, rawURL)
	}
	opts := cfg.DialOptions
	switch u.Scheme {
	case "http":
		// Without a fingerprint given, ask the server for its certificate's.
		if opts.Fingerprint == "" {
			fp, err := fetchFingerprint(ctx, opts.HTTPClient, u)
			if err != nil {
				return nil, err
			}
			opts.Fingerprint = fp
		}
		u.Scheme = "https"
		fallthrough
	case "https":
		if opts.WebSocketFallback {
			return raceTransports(ctx, rawURL, u, cfg, &opts)
		}
		return dialWebTransport(ctx, u, cfg, &opts)
	case "ws", "wss":
		return dialWebSocket(ctx, u, cfg, &opts)
	case "moqt", "moql":
		tlsConf, err := opts.clientTLS(u)
		if err != nil {
			return nil, err
		}
		tlsConf.NextProtos = Protocols(cfg.versions()...)
		quicConf := opts.QUICConfig
		if quicConf == nil {
			quicConf = quictransport.DefaultConfig()
		}
		conn, err := quictransport.Dial(ctx, hostPort(u), tlsConf, quicConf)
		if err != nil {
			return nil, fmt.Errorf("moq: QUIC connect to %s: %w", u.Host, err)
		}
		return conn, nil
	default:
		return nil, fmt.Errorf("%w %q: scheme must be https, http, moqt, moql, wss or ws", ErrUnsupportedURL, rawURL)
	}
}

func dialWebTransport(ctx context.Context, u *url.URL, cfg *Config, opts *DialOptions) (transport.Session, error) {
	tlsConf, err := opts.clientTLS(u)
	if err != nil {
		return nil, err
	}
	conn, _, err := webtransport.Dial(ctx, u.String(), tlsConf, Protocols(cfg.versions()...), nil)
	if err != nil {
		return nil, fmt.Errorf("moq: WebTransport connect to %s: %w", u.Host, err)
	}
	return conn, nil
}

func dialWebSocket(ctx context.Context, u *url.URL, cfg *Config, opts *DialOptions) (transport.Session, error) {
	wsOpts := &qmux.DialOptions{}
	if u.Scheme == "wss" {
		tlsConf, err := opts.clientTLS(u)
		if err != nil {
			return nil, err
		}
		wsOpts.TLSConfig = tlsConf
	}
	conn, err := qmux.Dial(ctx, u.String(), Protocols(cfg.versions()...), wsOpts)
	if err != nil {
		return nil, fmt.Errorf("moq: WebSocket connect to %s: %w", u.Host, err)
	}
	return conn, nil
}

// raceTransports dials WebTransport and, after a head start, WebSocket to the
// same host and path; the first session up wins and the other is closed.
// key identifies the URL for remembering which transport won.
func raceTransports(ctx context.Context, key string, u *url.URL, cfg *Config, opts *DialOptions) (transport.Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		conn transport.Session
		err  error
		ws   bool
	}
	results := make(chan result, 2)
	go func() {
		conn, err := dialWebTransport(ctx, u, cfg, opts)
		results <- result{conn, err, false}
	}()
	headStart := webSocketHeadStart
	if _, ok := webSocketWon.Load(key); ok {
		headStart = 0
	}
	wsURL := *u
	wsURL.Scheme = "wss"
	if strings.HasPrefix(key, "http:") {
		// A local relay reached through http:// serves WebSocket in the clear.
		wsURL.Scheme = "ws"
	}
	go func() {
		timer := time.NewTimer(headStart)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			results <- result{err: ctx.Err(), ws: true}
			return
		}
		conn, err := dialWebSocket(ctx, &wsURL, cfg, opts)
		results <- result{conn, err, true}
	}()
	var errs []error
	for range 2 {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if r.ws {
			webSocketWon.Store(key, true)
		}
		if len(errs) == 0 {
			// The other attempt is cancelled; close it should it still succeed.
			go func() {
				if other := <-results; other.conn != nil {
					_ = other.conn.CloseWithError(0, "lost the connection race")
				}
			}()
		}
		return r.conn, nil
	}
	return nil, errors.Join(errs...)
}

// hostPort returns u's host with the default port 443 when none is given.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

// clientTLS builds the TLS configuration for u from the options.
func (o *DialOptions) clientTLS(u *url.URL) (*tls.Config, error) {
	var conf *tls.Config
	if o.TLSConfig != nil {
		conf = o.TLSConfig.Clone()
	} else {
		conf = &tls.Config{}
	}
	if o.Fingerprint != "" {
		trust, err := selfsign.TrustFingerprint(o.Fingerprint)
		if err != nil {
			return nil, err
		}
		conf.InsecureSkipVerify = true
		conf.VerifyPeerCertificate = trust.VerifyPeerCertificate
	}
	if conf.ServerName == "" {
		conf.ServerName = u.Hostname()
	}
	return conf, nil
}

// fetchFingerprint GETs /certificate.sha256 from the server over plain HTTP.
// Without a client of the caller's, it uses one that keeps no connection
// (and no goroutine) once the answer is read.
func fetchFingerprint(ctx context.Context, client *http.Client, u *url.URL) (string, error) {
	if client == nil {
		tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	certURL := url.URL{Scheme: "http", Host: u.Host, Path: "/certificate.sha256"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, certURL.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("moq: fetching the certificate hash from %s: %w", certURL.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("moq: fetching the certificate hash from %s: %s", certURL.String(), resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", fmt.Errorf("moq: fetching the certificate hash from %s: %w", certURL.String(), err)
	}
	return strings.TrimSpace(string(body)), nil
}
