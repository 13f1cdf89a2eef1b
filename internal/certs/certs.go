// Package certs manages a server's TLS certificates: PEM certificate/key
// pairs chosen by SNI and reloaded without a restart, or, when no files are
// configured, a self-signed development certificate that is renewed before
// it expires.
package certs

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/internal/selfsign"
)

// RenewBefore is how long before its expiry the self-signed certificate is
// replaced. selfsign.Default certificates start a day in the past and last
// 14 days, so a certificate is renewed 11 days after it was made.
const RenewBefore = 48 * time.Hour

// ErrExpired is wrapped by the error of a load whose chain holds an expired
// certificate.
var ErrExpired = errors.New("certs: certificate has expired")

// Pair names the PEM files of one certificate.
type Pair struct {
	// CertFile holds the certificate chain, leaf first.
	CertFile string
	// KeyFile holds the leaf's private key.
	KeyFile string
}

// Config configures a Manager.
type Config struct {
	// Pairs are the certificates to serve; the first is the default for
	// clients that send no server name or one no certificate matches. None
	// means a self-signed certificate for localhost, 127.0.0.1 and ::1.
	Pairs []Pair
	// Logger receives reloads, renewals and failed watched reloads; nil
	// uses slog.Default().
	Logger *slog.Logger
	// Now is the clock for validity checks and renewal decisions; nil
	// uses time.Now. Run's timers use the time package regardless.
	Now func() time.Time
}

// Manager serves certificates to TLS handshakes. It is safe for concurrent
// use: readers load an immutable snapshot that reloads and renewals swap.
type Manager struct {
	pairs []Pair // absolute paths; empty in self-signed mode
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex // serializes loads and renewals
	cur     atomic.Pointer[state]
	running atomic.Bool
}

// state is one immutable set of certificates.
type state struct {
	certs       []*tls.Certificate // in Config.Pairs order; never empty
	fingerprint string             // of certs[0]
	sum         [sha256.Size]byte  // of the file bytes certs came from
	// renewAt and notBefore are set in self-signed mode only.
	renewAt, notBefore time.Time
}

// New loads the configured pairs, or makes a self-signed certificate when
// there are none. It fails if any pair cannot be loaded.
func New(cfg Config) (*Manager, error) {
	m := &Manager{log: cfg.Logger, now: cfg.Now}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	for i, p := range cfg.Pairs {
		if p.CertFile == "" || p.KeyFile == "" {
			return nil, fmt.Errorf("certs: pair %d: give both a certificate file and a key file", i+1)
		}
		var err error
		if p.CertFile, err = filepath.Abs(p.CertFile); err != nil {
			return nil, fmt.Errorf("certs: %w", err)
		}
		if p.KeyFile, err = filepath.Abs(p.KeyFile); err != nil {
			return nil, fmt.Errorf("certs: %w", err)
		}
		m.pairs = append(m.pairs, p)
	}
	var st *state
	var err error
	if m.SelfSigned() {
		st, err = m.generate()
	} else {
		st, err = m.load(nil)
	}
	if err != nil {
		return nil, err
	}
	m.cur.Store(st)
	return m, nil
}

// SelfSigned reports whether the manager serves a self-signed certificate.
func (m *Manager) SelfSigned() bool { return len(m.pairs) == 0 }

// Fingerprint returns the SHA-256 of the default certificate's leaf (the
// first pair's, or the self-signed one) as 64 lowercase hex digits, as
// selfsign.Fingerprint computes it.
func (m *Manager) Fingerprint() string { return m.current().fingerprint }

// GetCertificate returns the certificate for a handshake: the first pair
// whose leaf is valid for the client's server name (exact or wildcard SAN,
// compared as crypto/x509 does), preferring one whose key the client
// supports, else the first pair. It never fails; use it as
// tls.Config.GetCertificate.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.current().choose(hello), nil
}

// TLSConfig returns a new TLS 1.3 server config that takes its certificates
// from m.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: m.GetCertificate, MinVersion: tls.VersionTLS13}
}

// Reload reads every pair again and, if all load, serves them to new
// handshakes. On error the previous certificates stay. In self-signed mode
// it only renews a certificate that is due, so that reloading does not
// invalidate fingerprints clients have pinned.
func (m *Manager) Reload() error {
	if m.SelfSigned() {
		_, err := m.renewIfDue()
		return err
	}
	_, err := m.reload(true)
	return err
}

// choose picks the certificate for hello.
func (st *state) choose(hello *tls.ClientHelloInfo) *tls.Certificate {
	if len(st.certs) == 1 || hello == nil || hello.ServerName == "" {
		return st.certs[0]
	}
	var named *tls.Certificate
	for _, c := range st.certs {
		if c.Leaf.VerifyHostname(hello.ServerName) != nil {
			continue
		}
		if hello.SupportsCertificate(c) == nil {
			return c
		}
		if named == nil {
			named = c
		}
	}
	if named != nil {
		return named
	}
	return st.certs[0]
}

// current returns the certificates to serve, first renewing a self-signed
// certificate that is due, so none is served expired even if Run is late
// (a suspended machine) or not running.
func (m *Manager) current() *state {
	st := m.cur.Load()
	if st.due(m.now()) {
		next, err := m.renewIfDue()
		if err != nil {
			m.log.Error("certs: renewing the self-signed certificate", "err", err)
		}
		st = next
	}
	return st
}

// due reports whether a self-signed certificate needs replacing at now:
// RenewBefore its expiry, or if the clock went back before its start.
func (st *state) due(now time.Time) bool {
	return !st.renewAt.IsZero() && (!now.Before(st.renewAt) || now.Before(st.notBefore))
}

// renewIfDue replaces the self-signed certificate if it is due and returns
// the certificates now served.
func (m *Manager) renewIfDue() (*state, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.cur.Load()
	if !st.due(m.now()) {
		return st, nil
	}
	next, err := m.generate()
	if err != nil {
		return st, err
	}
	m.cur.Store(next)
	m.log.Info("certs: renewed the self-signed certificate",
		"fingerprint", next.fingerprint, "not_after", next.certs[0].Leaf.NotAfter)
	return next, nil
}

// generate makes a self-signed certificate.
func (m *Manager) generate() (*state, error) {
	cert, err := selfsign.Default(m.now())
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return &state{
		certs:       []*tls.Certificate{&cert},
		fingerprint: selfsign.Fingerprint(cert),
		renewAt:     cert.Leaf.NotAfter.Add(-RenewBefore),
		notBefore:   cert.Leaf.NotBefore,
	}, nil
}

// reload loads the pairs and swaps them in. Unless force is set, files
// whose bytes did not change are not parsed again. It reports whether new
// certificates are served.
func (m *Manager) reload(force bool) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.cur.Load()
	if force {
		prev = nil
	}
	st, err := m.load(prev)
	if err != nil || st == prev {
		return false, err
	}
	m.cur.Store(st)
	return true, nil
}

// load reads and checks every pair. It returns prev itself when the files
// hold the bytes prev was loaded from.
func (m *Manager) load(prev *state) (*state, error) {
	h := sha256.New()
	raw := make([][2][]byte, len(m.pairs))
	for i, p := range m.pairs {
		for j, name := range [2]string{p.CertFile, p.KeyFile} {
			b, err := os.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("certs: %w", err)
			}
			raw[i][j] = b
			writeBlock(h, b)
		}
	}
	st := &state{certs: make([]*tls.Certificate, len(m.pairs))}
	h.Sum(st.sum[:0])
	if prev != nil && prev.sum == st.sum {
		return prev, nil
	}
	now := m.now()
	for i, p := range m.pairs {
		cert, err := tls.X509KeyPair(raw[i][0], raw[i][1])
		if err != nil {
			return nil, fmt.Errorf("certs: %s with %s: %w", p.CertFile, p.KeyFile, err)
		}
		if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
			if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, fmt.Errorf("certs: %s: %w", p.CertFile, err)
			}
		}
		if err := checkExpiry(&cert, now); err != nil {
			return nil, fmt.Errorf("certs: %s: %w", p.CertFile, err)
		}
		st.certs[i] = &cert
	}
	st.fingerprint = selfsign.Fingerprint(*st.certs[0])
	return st, nil
}

// writeBlock hashes b with its length, so that moving bytes between files
// changes the sum.
func writeBlock(h hash.Hash, b []byte) {
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(b))))
	h.Write(b)
}

// checkExpiry fails if any certificate of the chain has expired at now.
func checkExpiry(cert *tls.Certificate, now time.Time) error {
	for i, der := range cert.Certificate {
		c := cert.Leaf
		if i > 0 {
			var err error
			if c, err = x509.ParseCertificate(der); err != nil {
				return fmt.Errorf("certificate %d of the chain: %w", i+1, err)
			}
		}
		if now.After(c.NotAfter) {
			return fmt.Errorf("%w: certificate %d of the chain (%s) expired at %s",
				ErrExpired, i+1, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return nil
}
