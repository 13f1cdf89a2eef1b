package certs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// layout lays out a pair's files in dir one way and replaces them the same
// way an operator's tool would.
type layout struct {
	name    string
	setup   func(t *testing.T, dir string, is issued) Pair
	replace func(t *testing.T, dir string, is issued)
}

var layouts = []layout{
	{
		name: "written in place",
		setup: func(t *testing.T, dir string, is issued) Pair {
			return writePair(t, dir, "tls", is)
		},
		replace: func(t *testing.T, dir string, is issued) {
			for name, b := range map[string][]byte{"tls.crt": is.cert, "tls.key": is.key} {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		},
	},
	{
		name: "renamed over",
		setup: func(t *testing.T, dir string, is issued) Pair {
			return writePair(t, dir, "tls", is)
		},
		replace: func(t *testing.T, dir string, is issued) {
			writePair(t, dir, "tls", is)
		},
	},
	{
		// The files are links through a "..data" link that is swapped to a
		// new directory, as Kubernetes updates mounted Secrets.
		name: "Kubernetes ..data swap",
		setup: func(t *testing.T, dir string, is issued) Pair {
			writePair(t, filepath.Join(mkdir(t, dir, "..v1")), "tls", is)
			symlink(t, "..v1", filepath.Join(dir, "..data"))
			symlink(t, filepath.Join("..data", "tls.crt"), filepath.Join(dir, "tls.crt"))
			symlink(t, filepath.Join("..data", "tls.key"), filepath.Join(dir, "tls.key"))
			return Pair{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
		},
		replace: func(t *testing.T, dir string, is issued) {
			writePair(t, mkdir(t, dir, "..v2"), "tls", is)
			symlink(t, "..v2", filepath.Join(dir, "..data_tmp"))
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
				t.Fatal(err)
			}
		},
	},
	{
		// The files are links to links in another directory that point to
		// numbered files in a third, as certbot's live and archive
		// directories are.
		name: "certbot links to another directory",
		setup: func(t *testing.T, dir string, is issued) Pair {
			conf, live, archive := mkdir(t, dir, "conf"), mkdir(t, dir, "live"), mkdir(t, dir, "archive")
			writePair(t, archive, "tls1", is)
			symlink(t, filepath.Join("..", "archive", "tls1.crt"), filepath.Join(live, "tls.crt"))
			symlink(t, filepath.Join("..", "archive", "tls1.key"), filepath.Join(live, "tls.key"))
			symlink(t, filepath.Join(live, "tls.crt"), filepath.Join(conf, "tls.crt"))
			symlink(t, filepath.Join(live, "tls.key"), filepath.Join(conf, "tls.key"))
			return Pair{CertFile: filepath.Join(conf, "tls.crt"), KeyFile: filepath.Join(conf, "tls.key")}
		},
		replace: func(t *testing.T, dir string, is issued) {
			live, archive := filepath.Join(dir, "live"), filepath.Join(dir, "archive")
			writePair(t, archive, "tls2", is)
			for _, ext := range []string{".crt", ".key"} {
				tmp := filepath.Join(live, "tls"+ext+".new")
				symlink(t, filepath.Join("..", "archive", "tls2"+ext), tmp)
				if err := os.Rename(tmp, filepath.Join(live, "tls"+ext)); err != nil {
					t.Fatal(err)
				}
			}
		},
	},
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// waitServed polls what GetCertificate serves for serverName, every 20 ms,
// until it is want's certificate.
func waitServed(t *testing.T, m *Manager, serverName string, want issued) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for chosenFingerprint(t, m, serverName) != want.fingerprint() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("still serving %s after %v, want %s", chosenFingerprint(t, m, serverName), waitLimit, want.fingerprint())
		}
	}
}

// startWatching makes a Manager of pair that logs to a recorder, runs it,
// and waits until it watches the files.
func startWatching(t *testing.T, pair Pair) (*Manager, *logRecorder) {
	t.Helper()
	rec := newLogRecorder()
	m, err := New(Config{Pairs: []Pair{pair}, Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	startRun(t, m)
	rec.waitFor(t, 0, "watching for certificate changes")
	return m, rec
}

func TestWatchReloadsReplacedPair(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			ca := validCA(t)
			dir := t.TempDir()
			v1 := ca.issue(t, []string{"watch.test"}, time.Time{}, time.Time{})
			v2 := ca.issue(t, []string{"watch.test"}, time.Time{}, time.Time{})
			m, rec := startWatching(t, l.setup(t, dir, v1))
			if got := servedFingerprint(t, m, "watch.test", ca.pool); got != v1.fingerprint() {
				t.Fatalf("served %s, want v1 %s", got, v1.fingerprint())
			}

			from := rec.count()
			l.replace(t, dir, v2)
			waitServed(t, m, "watch.test", v2)
			if got := servedFingerprint(t, m, "watch.test", ca.pool); got != v2.fingerprint() {
				t.Errorf("handshake served %s, want v2 %s", got, v2.fingerprint())
			}
			if got := m.Fingerprint(); got != v2.fingerprint() {
				t.Errorf("Fingerprint() = %s, want v2 %s", got, v2.fingerprint())
			}
			rec.waitFor(t, from, "INFO", "reloaded changed certificates", v2.fingerprint())
		})
	}
}

func TestWatchKeepsPreviousOnBrokenReplacement(t *testing.T) {
	ca := validCA(t)
	dir := t.TempDir()
	v1 := ca.issue(t, []string{"broken.test"}, time.Time{}, time.Time{})
	other := ca.issue(t, []string{"broken.test"}, time.Time{}, time.Time{})
	v2 := ca.issue(t, []string{"broken.test"}, time.Time{}, time.Time{})
	pair := writePair(t, dir, "tls", v1)
	m, rec := startWatching(t, pair)

	from := rec.count()
	writeFile(t, pair.KeyFile, other.key) // v1's certificate with another key
	rec.waitFor(t, from, "ERROR", "keeping the previous ones", "private key does not match public key")
	if got := servedFingerprint(t, m, "broken.test", ca.pool); got != v1.fingerprint() {
		t.Errorf("served %s after a broken replacement, want the previous %s", got, v1.fingerprint())
	}

	writePair(t, dir, "tls", v2)
	waitServed(t, m, "broken.test", v2)
}

func TestRunExitsWhenContextEnds(t *testing.T) {
	ca := validCA(t)
	tests := []struct {
		name      string
		files     bool
		cancelled bool // the context has ended before Run starts
	}{
		{"self-signed", false, false},
		{"files", true, false},
		{"self-signed, already cancelled", false, true},
		{"files, already cancelled", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			test := func(t *testing.T) {
				rec := newLogRecorder()
				cfg := Config{Logger: slog.New(rec)}
				if tt.files {
					cfg.Pairs = []Pair{writePair(t, t.TempDir(), "tls", ca.issue(t, []string{"run.test"}, time.Time{}, time.Time{}))}
				}
				m, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tt.cancelled {
					cancel()
				}
				errc := make(chan error, 1)
				go func() { errc <- m.Run(ctx) }()
				if !tt.cancelled {
					// Wait until Run is under way.
					if tt.files {
						rec.waitFor(t, 0, "watching for certificate changes")
					} else {
						synctest.Wait()
					}
					if err := m.Run(ctx); !errors.Is(err, ErrRunning) {
						t.Errorf("second Run = %v, want ErrRunning", err)
					}
					cancel()
				}
				select {
				case err := <-errc:
					if err != nil {
						t.Errorf("Run = %v, want nil", err)
					}
				case <-time.After(waitLimit):
					t.Fatalf("Run did not return within %v of its context ending", waitLimit)
				}
			}
			if tt.files {
				test(t) // fsnotify blocks in system calls, outside synctest's reach
			} else {
				synctest.Test(t, test)
			}
		})
	}
}

func TestRunRenewsSelfSigned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newLogRecorder()
		m, err := New(Config{Logger: slog.New(rec)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- m.Run(ctx) }()

		// Peek at the state rather than calling Fingerprint, which would
		// renew by itself.
		st0 := m.cur.Load()
		time.Sleep(time.Until(st0.renewAt) - time.Minute)
		synctest.Wait()
		if m.cur.Load() != st0 {
			t.Fatalf("renewed at %v, before %v", time.Now(), st0.renewAt)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		st1 := m.cur.Load()
		if st1 == st0 || st1.fingerprint == st0.fingerprint {
			t.Fatalf("not renewed at %v, after %v", time.Now(), st0.renewAt)
		}
		if leaf := st1.certs[0].Leaf; time.Until(leaf.NotAfter) <= RenewBefore || time.Now().Before(leaf.NotBefore) {
			t.Errorf("renewed certificate valid %v to %v at %v", leaf.NotBefore, leaf.NotAfter, time.Now())
		}
		rec.waitFor(t, 0, "renewed the self-signed certificate", st1.fingerprint)

		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestDebouncer(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		events []time.Duration // since the start
		fires  []time.Duration // since the start
	}{
		{"one event", []time.Duration{0}, []time.Duration{250 * ms}},
		{"a burst", []time.Duration{0, 100 * ms, 200 * ms}, []time.Duration{450 * ms}},
		{"two bursts", []time.Duration{0, 100 * ms, 1000 * ms}, []time.Duration{350 * ms, 1250 * ms}},
		{"a steady stream is cut at the maximum delay",
			[]time.Duration{0, 150 * ms, 300 * ms, 450 * ms, 600 * ms, 750 * ms, 900 * ms, 1050 * ms, 1200 * ms,
				1350 * ms, 1500 * ms, 1650 * ms, 1800 * ms, 1950 * ms, 2100 * ms, 2250 * ms},
			[]time.Duration{2000 * ms, 2500 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := debouncer{quiet: quietPeriod, max: maxDelay}
				defer d.stop()
				start := time.Now()
				var fires []time.Duration
				events := tt.events
				for len(events) > 0 || d.C() != nil {
					var next <-chan time.Time
					if len(events) > 0 {
						next = time.After(events[0] - time.Since(start))
					}
					select {
					case <-d.C():
						d.fired()
						fires = append(fires, time.Since(start))
					case <-next:
						d.event(time.Now())
						events = events[1:]
					}
				}
				if len(fires) != len(tt.fires) {
					t.Fatalf("fired at %v, want %v", fires, tt.fires)
				}
				for i := range fires {
					if fires[i] != tt.fires[i] {
						t.Fatalf("fired at %v, want %v", fires, tt.fires)
					}
				}
			})
		})
	}
}
