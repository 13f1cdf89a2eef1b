package relay_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/relay/relaytest"
	"github.com/moqgo/moq/session"
)

// writeCertificate writes a self-signed certificate for localhost and the
// loopback addresses, and its key, as PEM files in a new directory.
func writeCertificate(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	relaytest.WriteCertificate(t, certFile, keyFile, "localhost", "127.0.0.1", "::1")
	return certFile, keyFile
}

// serverCertificate returns the fingerprint of the certificate the relay's
// TCP port presents to a TLS client asking for serverName.
func serverCertificate(t *testing.T, r *relay.Relay, serverName string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.Port()),
		&tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("TLS to the TCP port as %q: %v", serverName, err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	return selfsign.Fingerprint(tls.Certificate{Certificate: [][]byte{leaf.Raw}})
}

// TestTLSOnTCP checks that a relay with a certificate of its own serves
// HTTPS and wss:// on its TCP port with it, and refuses plain HTTP there.
func TestTLSOnTCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	certFile, keyFile := writeCertificate(t)
	r := startRelayWith(t, relay.Config{Certificates: []relay.Certificate{{CertFile: certFile, KeyFile: keyFile}}})
	if !r.TLS() {
		t.Fatal("TLS() = false with a certificate")
	}
	trust, err := selfsign.TrustFingerprint(r.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: trust, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	base := "127.0.0.1:" + strconv.Itoa(r.Port())
	resp, err := client.Get("https://" + base + "/certificate.sha256")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != r.Fingerprint() || resp.ProtoMajor != 2 {
		t.Errorf("HTTPS /certificate.sha256 over HTTP/%d = %q, want %q over HTTP/2", resp.ProtoMajor, body, r.Fingerprint())
	}
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := plain.Get("http://" + base + "/certificate.sha256"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: status %d, want 400", resp.StatusCode)
		}
	}

	// Every transport carries a track with the relay's own certificate.
	path := moq.NewPath("tls")
	broadcast, track := publishAt(t, ctx, r, path)
	defer broadcast.Close()
	for i, transport := range []string{"quic", "webtransport", "websocket"} {
		sess := dial(t, ctx, r, transport, session.Config{})
		if !strings.HasPrefix(relayURL(r, transport), map[string]string{"quic": "moqt", "webtransport": "https", "websocket": "wss"}[transport]) {
			t.Fatalf("%s URL %s", transport, relayURL(r, transport))
		}
		sub, err := sess.Subscribe(ctx, path, "data", session.SubscribeOptions{})
		if err != nil {
			t.Fatalf("%s: subscribe: %v", transport, err)
		}
		writeGroup(t, track, i+1)
		awaitGroup(ctx, t, sub.Track(), uint64(i+1))
		sub.Close()
		_ = sess.Close()
	}
}

// TestCertificatesBySNI checks that a relay with several certificates
// presents the one whose name the client asks for, the first otherwise, on
// UDP (QUIC) and on TCP.
func TestCertificatesBySNI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	var certificates []relay.Certificate
	fingerprints := map[string]string{}
	for _, name := range []string{"a.example", "b.example"} {
		c := relay.Certificate{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+".key")}
		fingerprints[name] = relaytest.WriteCertificate(t, c.CertFile, c.KeyFile, name)
		certificates = append(certificates, c)
	}
	r := startRelayWith(t, relay.Config{Certificates: certificates})
	if r.Fingerprint() != fingerprints["a.example"] {
		t.Errorf("Fingerprint() is not the first certificate's")
	}
	for _, tc := range []struct{ serverName, want string }{
		{"a.example", "a.example"},
		{"b.example", "b.example"},
		{"other.example", "a.example"},
		{"", "a.example"},
	} {
		if got := serverCertificate(t, r, tc.serverName); got != fingerprints[tc.want] {
			t.Errorf("TCP as %q: got the certificate of another name, want %s's", tc.serverName, tc.want)
		}
		// Over QUIC, a client pinning the expected certificate connects.
		sess, err := session.Dial(ctx, relayURL(r, "quic"), &session.Config{Logger: testLogger(),
			DialOptions: session.DialOptions{Fingerprint: fingerprints[tc.want],
				TLSConfig: &tls.Config{ServerName: tc.serverName}}})
		if tc.serverName == "" {
			// An empty ServerName is filled with the URL's host (127.0.0.1).
			if err != nil {
				t.Errorf("QUIC as the URL's host: %v", err)
			}
		} else if err != nil {
			t.Errorf("QUIC as %q pinning %s's certificate: %v", tc.serverName, tc.want, err)
		}
		if sess != nil {
			_ = sess.Close()
		}
	}
}

// TestCertificateReload replaces a relay's certificate files while a
// session runs: the relay serves the new certificate to new sessions on
// every transport, without a restart, and the running session goes on. Then
// ReloadCertificates (what SIGHUP calls) picks up a second replacement.
func TestCertificateReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	certFile, keyFile := writeCertificate(t)
	r := startRelayWith(t, relay.Config{Certificates: []relay.Certificate{{CertFile: certFile, KeyFile: keyFile}}})
	old := r.Fingerprint()
	path := moq.NewPath("reload")
	broadcast, track := publishAt(t, ctx, r, path)
	defer broadcast.Close()
	running := dial(t, ctx, r, "quic", session.Config{})
	sub, err := running.Subscribe(ctx, path, "data", session.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	replaced := relaytest.WriteCertificate(t, certFile, keyFile, "localhost", "127.0.0.1", "::1")
	awaitFingerprint(t, ctx, r, replaced)
	if got := serverCertificate(t, r, "localhost"); got != replaced {
		t.Error("the TCP port still presents the old certificate")
	}
	for _, transport := range []string{"quic", "webtransport", "websocket"} {
		// Pinning the old certificate fails; the new one works.
		_, err := session.Dial(ctx, relayURL(r, transport), &session.Config{Logger: testLogger(),
			DialOptions: session.DialOptions{Fingerprint: old}})
		if err == nil {
			t.Errorf("%s: a client pinning the replaced certificate connected", transport)
		}
		dial(t, ctx, r, transport, session.Config{}).Close()
	}
	writeGroup(t, track, 1)
	awaitGroup(ctx, t, sub.Track(), 1)

	// The files change without a watch event reaching the relay (as on
	// filesystems that do not report changes); SIGHUP's reload serves them.
	again := relaytest.WriteCertificate(t, certFile, keyFile, "localhost", "127.0.0.1", "::1")
	if err := r.ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	if got := r.Fingerprint(); got != again {
		t.Errorf("after ReloadCertificates the fingerprint is not the new certificate's")
	}
	if got := serverCertificate(t, r, "localhost"); got != again {
		t.Error("after ReloadCertificates the TCP port presents another certificate")
	}

	// A broken replacement is refused and the last good certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.ReloadCertificates(); err == nil {
		t.Error("ReloadCertificates accepted a broken certificate file")
	}
	if r.Fingerprint() != again {
		t.Error("a broken replacement replaced the certificate")
	}
	dial(t, ctx, r, "webtransport", session.Config{}).Close()
}

// awaitFingerprint waits until the relay serves the certificate with
// fingerprint want, as it does once it has seen its files change.
func awaitFingerprint(t *testing.T, ctx context.Context, r *relay.Relay, want string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for r.Fingerprint() != want {
		select {
		case <-ctx.Done():
			t.Fatal("the relay did not pick up the replaced certificate files")
		case <-tick.C:
		}
	}
}
