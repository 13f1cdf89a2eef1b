package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/internal/selfsign"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait for an asynchronous event.
const waitLimit = 20 * time.Second

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testCA issues test certificates; its certificate is appended to every
// chain it issues, as an intermediate would be.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newCA makes a CA valid from notBefore to notAfter.
func newCA(t *testing.T, notBefore, notAfter time.Time) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: "certs test CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// validCA makes a CA valid around the real time.
func validCA(t *testing.T) *testCA {
	now := time.Now()
	return newCA(t, now.Add(-time.Hour), now.Add(24*time.Hour))
}

// issued is a PEM certificate chain and its key.
type issued struct {
	cert, key []byte
	der       []byte // the leaf
}

func (is issued) fingerprint() string {
	return selfsign.Fingerprint(tls.Certificate{Certificate: [][]byte{is.der}})
}

// issue makes a leaf for names (IP literals become IP SANs) valid from
// notBefore to notAfter, zero meaning around the real time.
func (ca *testCA) issue(t *testing.T, names []string, notBefore, notAfter time.Time) issued {
	t.Helper()
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = time.Now().Add(24 * time.Hour)
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	return issued{
		cert: chain,
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		der:  der,
	}
}

// writeFile writes b to name atomically enough for the tests that do not
// test writing styles: through a temporary file and a rename.
func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// writePair writes is as dir/base.crt and dir/base.key.
func writePair(t *testing.T, dir, base string, is issued) Pair {
	t.Helper()
	p := Pair{CertFile: filepath.Join(dir, base+".crt"), KeyFile: filepath.Join(dir, base+".key")}
	writeFile(t, p.CertFile, is.cert)
	writeFile(t, p.KeyFile, is.key)
	return p
}

// clientConfig verifies the server's chain against roots and serverName
// (an IP literal sends no SNI), or, with nil roots, trusts any certificate.
func clientConfig(serverName string, roots *x509.CertPool) *tls.Config {
	return &tls.Config{ServerName: serverName, RootCAs: roots, InsecureSkipVerify: roots == nil}
}

// handshake runs a real TLS handshake between client and server over
// net.Pipe and returns the leaf the client saw.
func handshake(t *testing.T, server, client *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	cc, sc := net.Pipe()
	cli := tls.Client(cc, client)
	srv := tls.Server(sc, server)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.HandshakeContext(ctx)
	}()
	err := cli.HandshakeContext(ctx)
	// Close the pipe, not the TLS conns: their close_notify would wait for
	// a reader.
	cc.Close()
	sc.Close()
	<-done
	if err != nil {
		return nil, err
	}
	return cli.ConnectionState().PeerCertificates[0], nil
}

// servedFingerprint is the fingerprint of the leaf that a fresh handshake
// for serverName gets, verified against roots unless nil.
func servedFingerprint(t *testing.T, m *Manager, serverName string, roots *x509.CertPool) string {
	t.Helper()
	leaf, err := handshake(t, m.TLSConfig(), clientConfig(serverName, roots))
	if err != nil {
		t.Fatalf("handshake for %q: %v", serverName, err)
	}
	return selfsign.Fingerprint(tls.Certificate{Certificate: [][]byte{leaf.Raw}})
}

// chosenFingerprint is the fingerprint of what GetCertificate returns for
// serverName, without a handshake.
func chosenFingerprint(t *testing.T, m *Manager, serverName string) string {
	t.Helper()
	cert, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: serverName})
	if err != nil {
		t.Fatalf("GetCertificate(%q): %v", serverName, err)
	}
	return selfsign.Fingerprint(*cert)
}

// logRecorder is a slog.Handler that keeps records and signals each one.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
	changed chan struct{} // closed and replaced on every record
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// text renders a record as "LEVEL message key=value ...".
func text(rec slog.Record) string {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	return b.String()
}

// waitFor waits until a record whose text contains every one of subs has
// been logged since the first from records (an index), and returns it.
func (r *logRecorder) waitFor(t *testing.T, from int, subs ...string) string {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		recs, changed := r.records, r.changed
		r.mu.Unlock()
	next:
		for _, rec := range recs[min(from, len(recs)):] {
			s := text(rec)
			for _, sub := range subs {
				if !strings.Contains(s, sub) {
					continue next
				}
			}
			return s
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no log record with %q within %v; have:\n%s", subs, waitLimit, r.dump())
		}
	}
}

// count returns the number of records so far.
func (r *logRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.records)
}

func (r *logRecorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.records {
		b.WriteString(text(rec) + "\n")
	}
	return b.String()
}

// startRun runs m.Run in a goroutine that the test's cleanup ends and waits
// for.
func startRun(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Errorf("Run did not return within %v of its context ending", waitLimit)
		}
	})
}
