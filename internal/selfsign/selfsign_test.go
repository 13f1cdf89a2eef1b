package selfsign

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDefault(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	cert, err := Default(now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := leaf.NotBefore, now.Add(-24*time.Hour).Truncate(time.Second); !got.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", got, want)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 14*24*time.Hour {
		t.Errorf("NotAfter - NotBefore = %v, want exactly 14 days", got)
	}
	if !leaf.NotBefore.Before(now) || !leaf.NotAfter.After(now) {
		t.Errorf("certificate [%v, %v] not valid at %v", leaf.NotBefore, leaf.NotAfter, now)
	}
	if got := strings.Join(leaf.DNSNames, ","); got != "localhost" {
		t.Errorf("DNSNames = %q, want localhost", got)
	}
	wantIPs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if len(leaf.IPAddresses) != len(wantIPs) {
		t.Fatalf("IPAddresses = %v, want %v", leaf.IPAddresses, wantIPs)
	}
	for i, ip := range wantIPs {
		if !leaf.IPAddresses[i].Equal(ip) {
			t.Errorf("IPAddresses[%d] = %v, want %v", i, leaf.IPAddresses[i], ip)
		}
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T is not ECDSA P-256", leaf.PublicKey)
	}
	if leaf.IsCA {
		t.Error("certificate is a CA")
	}
	if _, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("private key is %T, want *ecdsa.PrivateKey", cert.PrivateKey)
	}
}

func TestGenerate(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		hosts    []string
		validity time.Duration
		wantErr  error
		dns      []string
		ips      []string
	}{
		{"dns and ips", []string{"relay.example", "10.0.0.1", "2001:db8::1", "localhost"}, time.Hour, nil,
			[]string{"relay.example", "localhost"}, []string{"10.0.0.1", "2001:db8::1"}},
		{"single ip", []string{"192.0.2.7"}, 24 * time.Hour, nil, nil, []string{"192.0.2.7"}},
		{"no hosts", nil, time.Hour, ErrNoHosts, nil, nil},
		{"zero validity", []string{"a"}, 0, ErrValidity, nil, nil},
		{"negative validity", []string{"a"}, -time.Hour, ErrValidity, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := Generate(tc.hosts, start, tc.validity)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Generate error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			leaf := cert.Leaf
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != tc.validity {
				t.Errorf("validity = %v, want %v", got, tc.validity)
			}
			if strings.Join(leaf.DNSNames, ",") != strings.Join(tc.dns, ",") {
				t.Errorf("DNSNames = %v, want %v", leaf.DNSNames, tc.dns)
			}
			var ips []string
			for _, ip := range leaf.IPAddresses {
				ips = append(ips, ip.String())
			}
			if strings.Join(ips, ",") != strings.Join(tc.ips, ",") {
				t.Errorf("IPAddresses = %v, want %v", ips, tc.ips)
			}
			if leaf.Subject.CommonName != tc.hosts[0] {
				t.Errorf("CommonName = %q, want %q", leaf.Subject.CommonName, tc.hosts[0])
			}
			// Every host verifies against the certificate used as its own root.
			roots := x509.NewCertPool()
			roots.AddCert(leaf)
			for _, h := range tc.hosts {
				_, err := leaf.Verify(x509.VerifyOptions{
					DNSName:     h,
					Roots:       roots,
					CurrentTime: start.Add(tc.validity / 2),
					KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
				})
				if err != nil {
					t.Errorf("Verify(%q): %v", h, err)
				}
			}
		})
	}
}

var lowerHex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestFingerprint(t *testing.T) {
	a, err := Default(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Default(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fa, fb := Fingerprint(a), Fingerprint(b)
	for _, fp := range []string{fa, fb} {
		if !lowerHex64.MatchString(fp) {
			t.Errorf("Fingerprint = %q, want 64 lowercase hex digits", fp)
		}
	}
	sum := sha256.Sum256(a.Certificate[0])
	if fa != hex.EncodeToString(sum[:]) {
		t.Errorf("Fingerprint = %s, want SHA-256 of the leaf DER %x", fa, sum)
	}
	if fa == fb {
		t.Error("two generated certificates share a fingerprint")
	}
	if got := Fingerprint(tls.Certificate{}); got != "" {
		t.Errorf("Fingerprint of an empty certificate = %q, want \"\"", got)
	}
}

func TestParseFingerprint(t *testing.T) {
	sum := sha256.Sum256([]byte("moq"))
	lower := hex.EncodeToString(sum[:])
	var colon []string
	for i := 0; i < len(lower); i += 2 {
		colon = append(colon, strings.ToUpper(lower[i:i+2]))
	}
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"lowercase", lower, false},
		{"uppercase", strings.ToUpper(lower), false},
		{"colon separated", strings.Join(colon, ":"), false},
		{"empty", "", true},
		{"too short", lower[:62], true},
		{"too long", lower + "00", true},
		{"not hex", "zz" + lower[2:], true},
		{"spaces", " " + lower[1:], true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFingerprint(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrFingerprintFormat) {
					t.Fatalf("ParseFingerprint(%q) error = %v, want ErrFingerprintFormat", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFingerprint(%q): %v", tc.in, err)
			}
			if got != sum {
				t.Fatalf("ParseFingerprint(%q) = %x, want %x", tc.in, got, sum)
			}
		})
	}
	if _, err := TrustFingerprint("nope"); !errors.Is(err, ErrFingerprintFormat) {
		t.Errorf("TrustFingerprint(invalid) error = %v, want ErrFingerprintFormat", err)
	}
}

// handshake runs a TLS handshake over loopback TCP between a server
// presenting cert and a client using conf, returning the client's error.
func handshake(t *testing.T, cert tls.Certificate, conf *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		server := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		err = server.Handshake()
		if err == nil {
			// TLS 1.3 servers finish before the client verified; wait for
			// the client's verdict (close or alert).
			_, err = server.Read(make([]byte, 1))
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(deadline)
	client := tls.Client(c, conf)
	err = client.Handshake()
	if err == nil && !client.ConnectionState().PeerCertificates[0].Equal(cert.Leaf) {
		t.Error("client saw a different certificate than the server presented")
	}
	c.Close()
	<-done
	return err
}

func TestTrustFingerprint(t *testing.T) {
	trusted, err := Default(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := Default(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		server tls.Certificate
		pin    string
		ok     bool
	}{
		{"trusted certificate", trusted, Fingerprint(trusted), true},
		{"uppercase pin", trusted, strings.ToUpper(Fingerprint(trusted)), true},
		{"other certificate", other, Fingerprint(trusted), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := TrustFingerprint(tc.pin)
			if err != nil {
				t.Fatal(err)
			}
			err = handshake(t, tc.server, conf)
			if tc.ok {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrFingerprintMismatch) {
				t.Fatalf("handshake error = %v, want ErrFingerprintMismatch", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, Fingerprint(tc.server)) || !strings.Contains(msg, strings.ToLower(tc.pin)) {
				t.Fatalf("error %q does not name both fingerprints", msg)
			}
		})
	}
}

func FuzzParseFingerprint(f *testing.F) {
	sum := sha256.Sum256([]byte("seed"))
	f.Add(hex.EncodeToString(sum[:]))
	f.Add(strings.ToUpper(hex.EncodeToString(sum[:])))
	f.Add("ab:cd")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			if !errors.Is(err, ErrFingerprintFormat) {
				t.Fatalf("error %v does not wrap ErrFingerprintFormat", err)
			}
			return
		}
		clean := strings.ToLower(strings.ReplaceAll(s, ":", ""))
		if got := hex.EncodeToString(fp[:]); got != clean {
			t.Fatalf("ParseFingerprint(%q) = %s", s, got)
		}
		if !bytes.Equal(fp[:], mustDecode(t, clean)) {
			t.Fatal("decoded bytes differ")
		}
	})
}

func mustDecode(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
