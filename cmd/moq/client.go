package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"

	quicgo "github.com/quic-go/quic-go"

	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/session"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	url         string
	broadcast   string
	track       string
	insecure    bool
	fingerprint string
	logLevel    string
}

func (c *clientFlags) register(fs *flag.FlagSet, defaultBroadcast, defaultTrack string) {
	fs.StringVar(&c.url, "url", "", "relay URL: http://localhost:4443/ (local relay, trusts its self-signed certificate), https://..., moqt://host:port")
	fs.StringVar(&c.broadcast, "broadcast", defaultBroadcast, "broadcast path")
	fs.StringVar(&c.track, "track", defaultTrack, "track name")
	fs.BoolVar(&c.insecure, "insecure", false, "accept any server certificate (testing only)")
	fs.StringVar(&c.fingerprint, "fingerprint", "", "trust only the server certificate with this SHA-256 (64 hex digits)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
}

// check reports missing required flags.
func (c *clientFlags) check(fs *flag.FlagSet) error {
	var missing []string
	if c.url == "" {
		missing = append(missing, "--url")
	}
	if c.broadcast == "" {
		missing = append(missing, "--broadcast")
	}
	if len(missing) > 0 {
		fmt.Fprintf(fs.Output(), "moq %s: missing %s\n", fs.Name(), strings.Join(missing, " and "))
		fs.Usage()
		return errUsage
	}
	return nil
}

// parseFlags parses args, printing the usage on mistakes.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "moq %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// newLogger returns a logger writing to w at level, in format "text" or
// "json".
func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: want text or json", format)
}

// dial connects with the shared flags and explains common failures.
func (c *clientFlags) dial(ctx context.Context, cfg session.Config, stderr io.Writer) (*session.Session, error) {
	if err := c.configure(&cfg, stderr); err != nil {
		return nil, err
	}
	sess, err := session.Dial(ctx, c.url, &cfg)
	if err != nil {
		return nil, explainDial(c.url, err)
	}
	return sess, nil
}

// dialClient is dial for a Client that reconnects after a lost session.
func (c *clientFlags) dialClient(ctx context.Context, cfg session.Config, stderr io.Writer) (*session.Client, error) {
	if err := c.configure(&cfg, stderr); err != nil {
		return nil, err
	}
	client, err := session.DialClient(ctx, c.url, &cfg, session.Reconnect(session.DefaultBackoff))
	if err != nil {
		return nil, explainDial(c.url, err)
	}
	return client, nil
}

// configure applies the shared flags to cfg.
func (c *clientFlags) configure(cfg *session.Config, stderr io.Writer) error {
	log, err := newLogger(c.logLevel, "text", stderr)
	if err != nil {
		return err
	}
	cfg.Logger = log
	cfg.Fingerprint = c.fingerprint
	if c.insecure {
		cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return nil
}

// explainDial adds the likely fix to a connection failure.
func explainDial(url string, err error) error {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	var idle *quicgo.IdleTimeoutError
	var handshake *quicgo.HandshakeTimeoutError
	switch {
	case errors.Is(err, session.ErrUnsupportedURL):
		return err
	case errors.As(err, &idle), errors.As(err, &handshake), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot reach %s: %v (is the relay running?)", url, err)
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &verifyErr),
		errors.Is(err, selfsign.ErrFingerprintMismatch), strings.Contains(err.Error(), "tls: "):
		// quic-go reports TLS failures as text inside its CRYPTO_ERROR.
		reason := err.Error()
		if i := strings.LastIndex(reason, "tls: "); i >= 0 {
			reason = reason[i:]
		}
		return fmt.Errorf("cannot connect to %s: %s; for a local relay use an http:// URL (it fetches the certificate hash), --fingerprint HEX or --insecure", url, reason)
	}
	return err
}
