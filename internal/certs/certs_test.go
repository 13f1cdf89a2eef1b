package certs

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/selfsign"
)

func TestSelectBySNI(t *testing.T) {
	ca := validCA(t)
	dir := t.TempDir()
	def := ca.issue(t, []string{"default.test", "127.0.0.1"}, time.Time{}, time.Time{})
	exact := ca.issue(t, []string{"a.example.com"}, time.Time{}, time.Time{})
	wild := ca.issue(t, []string{"*.b.example.com"}, time.Time{}, time.Time{})
	m, err := New(Config{Pairs: []Pair{
		writePair(t, dir, "default", def),
		writePair(t, dir, "exact", exact),
		writePair(t, dir, "wild", wild),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if m.SelfSigned() {
		t.Error("SelfSigned() = true with files")
	}
	if got, want := m.Fingerprint(), def.fingerprint(); got != want {
		t.Errorf("Fingerprint() = %s, want the first pair's %s", got, want)
	}
	tests := []struct {
		name, serverName string
		want             issued
		verifies         bool // the served chain is valid for serverName
	}{
		{"no SNI falls back to the first pair", "", def, false},
		{"IP literal sends no SNI", "127.0.0.1", def, true},
		{"first pair by name", "default.test", def, true},
		{"exact SAN", "a.example.com", exact, true},
		{"exact SAN in other case", "A.Example.COM", exact, true},
		{"wildcard SAN", "x.b.example.com", wild, true},
		{"wildcard SAN in other case", "X.B.EXAMPLE.com", wild, true},
		{"wildcard does not cover its parent", "b.example.com", def, false},
		{"wildcard covers one label only", "y.x.b.example.com", def, false},
		{"unknown name falls back to the first pair", "unknown.test", def, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if net.ParseIP(tt.serverName) == nil {
				if got := chosenFingerprint(t, m, tt.serverName); got != tt.want.fingerprint() {
					t.Errorf("GetCertificate chose %s, want %s", got, tt.want.fingerprint())
				}
			}
			if got := servedFingerprint(t, m, tt.serverName, nil); got != tt.want.fingerprint() {
				t.Errorf("handshake served %s, want %s", got, tt.want.fingerprint())
			}
			if tt.verifies {
				if _, err := handshake(t, m.TLSConfig(), clientConfig(tt.serverName, ca.pool)); err != nil {
					t.Errorf("verifying handshake: %v", err)
				}
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	ca := validCA(t)
	dir := t.TempDir()
	good := writePair(t, dir, "good", ca.issue(t, []string{"good.test"}, time.Time{}, time.Time{}))
	past := time.Now().Add(-48 * time.Hour)
	expired := writePair(t, dir, "expired", ca.issue(t, []string{"old.test"}, past, past.Add(time.Hour)))
	tests := []struct {
		name  string
		pairs []Pair
		is    error  // wrapped by the error, if set
		has   string // in the error's text
	}{
		{"no key file", []Pair{{CertFile: good.CertFile}}, nil, "both a certificate file and a key file"},
		{"no cert file", []Pair{good, {KeyFile: good.KeyFile}}, nil, "pair 2"},
		{"missing file", []Pair{{CertFile: filepath.Join(dir, "none.crt"), KeyFile: good.KeyFile}}, fs.ErrNotExist, "none.crt"},
		{"swapped files", []Pair{{CertFile: good.KeyFile, KeyFile: good.CertFile}}, nil, "good.key"},
		{"expired", []Pair{good, expired}, ErrExpired, "expired.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(Config{Pairs: tt.pairs})
			if err == nil {
				t.Fatalf("New succeeded: %v", m)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.has) {
				t.Errorf("error %q does not mention %q", err, tt.has)
			}
		})
	}
}

func TestReloadServesReplacedPair(t *testing.T) {
	ca := validCA(t)
	dir := t.TempDir()
	v1 := ca.issue(t, []string{"reload.test"}, time.Time{}, time.Time{})
	v2 := ca.issue(t, []string{"reload.test"}, time.Time{}, time.Time{})
	p := writePair(t, dir, "tls", v1)
	m, err := New(Config{Pairs: []Pair{p}})
	if err != nil {
		t.Fatal(err)
	}
	if got := servedFingerprint(t, m, "reload.test", ca.pool); got != v1.fingerprint() {
		t.Fatalf("served %s, want v1 %s", got, v1.fingerprint())
	}
	writePair(t, dir, "tls", v2)
	if got := servedFingerprint(t, m, "reload.test", ca.pool); got != v1.fingerprint() {
		t.Fatalf("served %s before Reload, want v1 %s", got, v1.fingerprint())
	}
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := servedFingerprint(t, m, "reload.test", ca.pool); got != v2.fingerprint() {
		t.Errorf("served %s after Reload, want v2 %s", got, v2.fingerprint())
	}
	if got := m.Fingerprint(); got != v2.fingerprint() {
		t.Errorf("Fingerprint() = %s after Reload, want v2 %s", got, v2.fingerprint())
	}
}

func TestReloadUnchangedFilesKeepsState(t *testing.T) {
	ca := validCA(t)
	p := writePair(t, t.TempDir(), "tls", ca.issue(t, []string{"same.test"}, time.Time{}, time.Time{}))
	m, err := New(Config{Pairs: []Pair{p}})
	if err != nil {
		t.Fatal(err)
	}
	before := m.cur.Load()
	changed, err := m.reload(false)
	if err != nil || changed {
		t.Fatalf("reload(false) of unchanged files = %v, %v; want false, nil", changed, err)
	}
	if m.cur.Load() != before {
		t.Error("reload(false) of unchanged files swapped the state")
	}
}

func TestReloadFailureKeepsPrevious(t *testing.T) {
	past := time.Now().Add(-48 * time.Hour)
	tests := []struct {
		name       string
		breakFiles func(t *testing.T, ca *testCA, first, second Pair)
		is         error
		has        string
	}{
		{"missing key file", func(t *testing.T, _ *testCA, _, second Pair) {
			if err := os.Remove(second.KeyFile); err != nil {
				t.Fatal(err)
			}
		}, fs.ErrNotExist, "second.key"},
		{"not PEM", func(t *testing.T, _ *testCA, first, _ Pair) {
			writeFile(t, first.CertFile, []byte("not a certificate"))
		}, nil, "first.crt"},
		{"key does not match its certificate", func(t *testing.T, ca *testCA, first, _ Pair) {
			writeFile(t, first.KeyFile, ca.issue(t, []string{"first.test"}, time.Time{}, time.Time{}).key)
		}, nil, "private key does not match public key"},
		{"expired leaf", func(t *testing.T, ca *testCA, first, _ Pair) {
			writePair(t, filepath.Dir(first.CertFile), "first", ca.issue(t, []string{"first.test"}, past, past.Add(time.Hour)))
		}, ErrExpired, "certificate 1 of the chain"},
		{"expired intermediate", func(t *testing.T, _ *testCA, first, _ Pair) {
			old := newCA(t, past, past.Add(time.Hour))
			writePair(t, filepath.Dir(first.CertFile), "first", old.issue(t, []string{"first.test"}, time.Time{}, time.Time{}))
		}, ErrExpired, "certificate 2 of the chain"},
		{"good first pair, broken second", func(t *testing.T, ca *testCA, first, second Pair) {
			writePair(t, filepath.Dir(first.CertFile), "first", ca.issue(t, []string{"first.test"}, time.Time{}, time.Time{}))
			writeFile(t, second.KeyFile, []byte("garbage"))
		}, nil, "second.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := validCA(t)
			dir := t.TempDir()
			first1 := ca.issue(t, []string{"first.test"}, time.Time{}, time.Time{})
			second1 := ca.issue(t, []string{"second.test"}, time.Time{}, time.Time{})
			first, second := writePair(t, dir, "first", first1), writePair(t, dir, "second", second1)
			m, err := New(Config{Pairs: []Pair{first, second}})
			if err != nil {
				t.Fatal(err)
			}

			tt.breakFiles(t, ca, first, second)
			err = m.Reload()
			if err == nil {
				t.Fatal("Reload of broken files succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.has) {
				t.Errorf("error %q does not mention %q", err, tt.has)
			}
			if got := servedFingerprint(t, m, "first.test", ca.pool); got != first1.fingerprint() {
				t.Errorf("first.test served %s, want the previous %s", got, first1.fingerprint())
			}
			if got := servedFingerprint(t, m, "second.test", ca.pool); got != second1.fingerprint() {
				t.Errorf("second.test served %s, want the previous %s", got, second1.fingerprint())
			}
			if got := m.Fingerprint(); got != first1.fingerprint() {
				t.Errorf("Fingerprint() = %s, want the previous %s", got, first1.fingerprint())
			}

			// Repaired files load again.
			first2 := ca.issue(t, []string{"first.test"}, time.Time{}, time.Time{})
			writePair(t, dir, "first", first2)
			writePair(t, dir, "second", second1)
			if err := m.Reload(); err != nil {
				t.Fatalf("Reload of repaired files: %v", err)
			}
			if got := servedFingerprint(t, m, "first.test", ca.pool); got != first2.fingerprint() {
				t.Errorf("first.test served %s after repair, want %s", got, first2.fingerprint())
			}
		})
	}
}

func TestSelfSigned(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !m.SelfSigned() {
		t.Error("SelfSigned() = false without files")
	}
	cert, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != selfsign.MaxBrowserValidity {
		t.Errorf("validity %v, want %v", got, selfsign.MaxBrowserValidity)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" || len(leaf.IPAddresses) != 2 {
		t.Errorf("SANs %v %v, want localhost, 127.0.0.1 and ::1", leaf.DNSNames, leaf.IPAddresses)
	}
	if got, want := m.Fingerprint(), selfsign.Fingerprint(*cert); got != want {
		t.Errorf("Fingerprint() = %s, want the served certificate's %s", got, want)
	}
	client, err := selfsign.TrustFingerprint(m.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, m.TLSConfig(), client); err != nil {
		t.Errorf("handshake pinning Fingerprint(): %v", err)
	}
}

func TestSelfSignedRenewal(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// to is where the clock goes, relative to the first
		// certificate's renewal time.
		to    time.Duration
		renew bool
	}{
		{"a second before renewal", -time.Second, false},
		{"at renewal", 0, true},
		{"a day before expiry", RenewBefore - 24*time.Hour, true},
		{"long after expiry", 100 * 24 * time.Hour, true},
		{"clock set back before NotBefore", -13 * 24 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: start}
			m, err := New(Config{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			fp0 := m.Fingerprint()
			renewAt := m.cur.Load().renewAt
			clock.Advance(renewAt.Add(tt.to).Sub(clock.Now()))
			if err := m.Reload(); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			cert, err := m.GetCertificate(&tls.ClientHelloInfo{})
			if err != nil {
				t.Fatal(err)
			}
			if got := selfsign.Fingerprint(*cert); got != m.Fingerprint() {
				t.Errorf("served %s but Fingerprint() = %s", got, m.Fingerprint())
			}
			if renewed := m.Fingerprint() != fp0; renewed != tt.renew {
				t.Errorf("renewed = %v, want %v", renewed, tt.renew)
			}
			if now := clock.Now(); now.Before(cert.Leaf.NotBefore) || !now.Before(cert.Leaf.NotAfter) {
				t.Errorf("served a certificate valid %v to %v at %v", cert.Leaf.NotBefore, cert.Leaf.NotAfter, now)
			}
		})
	}
}

func TestSelfSignedNeverServedExpired(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	m, err := New(Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	const step, days = 6 * time.Hour, 60
	renewals, fp := 0, m.Fingerprint()
	for range days * 24 * time.Hour / step {
		clock.Advance(step)
		now := clock.Now()
		cert, _ := m.GetCertificate(&tls.ClientHelloInfo{})
		if now.Before(cert.Leaf.NotBefore) || cert.Leaf.NotAfter.Sub(now) <= RenewBefore {
			t.Fatalf("at %v served a certificate valid %v to %v", now, cert.Leaf.NotBefore, cert.Leaf.NotAfter)
		}
		if got := m.Fingerprint(); got != fp {
			renewals++
			fp = got
		}
	}
	// A certificate lasts 14 days from the day before it was made and is
	// renewed RenewBefore its end: every 11 days.
	if want := days / 11; renewals != want {
		t.Errorf("%d renewals in %d days, want %d", renewals, days, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	ca := validCA(t)
	dir := t.TempDir()
	versions := []issued{
		ca.issue(t, []string{"c.test"}, time.Time{}, time.Time{}),
		ca.issue(t, []string{"c.test"}, time.Time{}, time.Time{}),
	}
	p := writePair(t, dir, "tls", versions[0])
	m, err := New(Config{Pairs: []Pair{p}})
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{versions[0].fingerprint(): true, versions[1].fingerprint(): true}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				cert, _ := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "c.test"})
				if fp := selfsign.Fingerprint(*cert); !known[fp] || !known[m.Fingerprint()] {
					t.Errorf("served unknown certificate %s", fp)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			v := versions[i%2]
			if err := os.WriteFile(p.CertFile+".new", v.cert, 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(p.KeyFile+".new", v.key, 0o600); err != nil {
				t.Error(err)
				return
			}
			err1 := os.Rename(p.CertFile+".new", p.CertFile)
			err2 := os.Rename(p.KeyFile+".new", p.KeyFile)
			if err := errors.Join(err1, err2); err != nil {
				t.Error(err)
				return
			}
			if err := m.Reload(); err != nil {
				t.Errorf("Reload: %v", err)
				return
			}
		}
	})
	wg.Wait()
}
