package moq

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

	quicgo "github.com/quic-go/quic-go"

	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/transport"
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
}

// ErrUnsupportedURL reports a URL whose scheme Dial cannot use.
var ErrUnsupportedURL = errors.New("moq: unsupported URL")

// Dial connects to a moq-lite server and starts a session.
//
// Supported URLs:
//   - https://host:port/path — WebTransport over HTTP/3; the path scopes the
//     session on relays.
//   - http://host:port/path — local development: fetches the server's
//     certificate hash over plain HTTP from /certificate.sha256, then connects
//     over WebTransport trusting exactly that certificate, as browsers do.
//   - moqt://host:port and moql://host:port — raw QUIC with moq ALPNs.
//
// ctx bounds connecting and the handshake.
func Dial(ctx context.Context, rawURL string, cfg *Config) (*Session, error) {
	if cfg == nil {
		cfg = &Config{}
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
		fp, err := fetchFingerprint(ctx, opts.HTTPClient, u)
		if err != nil {
			return nil, err
		}
		opts.Fingerprint = fp
		u.Scheme = "https"
		fallthrough
	case "https":
		tlsConf, err := opts.clientTLS(u)
		if err != nil {
			return nil, err
		}
		conn, _, err := webtransport.Dial(ctx, u.String(), tlsConf, protocols(cfg.versions()), nil)
		if err != nil {
			return nil, fmt.Errorf("moq: WebTransport connect to %s: %w", u.Host, err)
		}
		return conn, nil
	case "moqt", "moql":
		tlsConf, err := opts.clientTLS(u)
		if err != nil {
			return nil, err
		}
		tlsConf.NextProtos = protocols(cfg.versions())
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
		return nil, fmt.Errorf("%w %q: scheme must be https, http, moqt or moql", ErrUnsupportedURL, rawURL)
	}
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
func fetchFingerprint(ctx context.Context, client *http.Client, u *url.URL) (string, error) {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: nil}}
	}
	certURL := url.URL{Scheme: "http", Host: u.Host, Path: "/certificate.sha256"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, certURL.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("moq: fetching the certificate hash from %s: %w (is the relay running?)", certURL.String(), err)
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
