package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/moqgo/moq/relay/relaytest"
)

// TestAwaitShutdown checks that a relay slow to shut down is reported, with
// the goroutine stacks, only once the grace period has passed, and that its
// result is still returned.
func TestAwaitShutdown(t *testing.T) {
	errRun := errors.New("run result")
	tests := []struct {
		name      string
		finishIn  time.Duration // after the interrupt; negative: before it
		wantNotes bool
	}{
		{"ends before the interrupt", -time.Second, false},
		{"ends within the grace period", 14 * time.Second, false},
		{"ends after the grace period", 20 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				done := make(chan error, 1)
				var out bytes.Buffer
				result := make(chan error, 1)
				go func() { result <- awaitShutdown(ctx, done, 15*time.Second, &out) }()
				if tc.finishIn < 0 {
					done <- errRun
				} else {
					cancel()
					time.Sleep(tc.finishIn)
					synctest.Wait()
					done <- errRun
				}
				if err := <-result; !errors.Is(err, errRun) {
					t.Fatalf("awaitShutdown = %v, want the relay's result", err)
				}
				got := out.String()
				noted := strings.Contains(got, "interrupt again") && strings.Contains(got, "goroutine profile")
				if noted != tc.wantNotes {
					t.Fatalf("output %q: reported slow shutdown = %v, want %v", got, noted, tc.wantNotes)
				}
			})
		})
	}
}

// TestRelayHelpShowsSettings checks that `moq relay -h` documents every setting
// with its default, and that a limit given on the command line is parsed.
func TestRelayHelpShowsSettings(t *testing.T) {
	var out strings.Builder
	if code := run(context.Background(), []string{"relay", "-h"}, nil, io.Discard, &out); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, want := range []string{
		"-max-streams", "(default 1024)", "-request-timeout", "-handshake-timeout", "-idle-timeout",
		"-max-subscriptions", "-max-pending-subscriptions", "-unconfirmed-rate", "-max-group-streams",
		"-max-fetches", "-max-announce-interests", "-max-announced", "-cache-age", "-cache-track-bytes",
		"-cache-total-bytes", "-max-sessions", "(default 10000)", "-max-sessions-per-ip", "-internal-listen",
		"-drain-timeout", "(default 30s)", "-drain-url", "-log-format", "-cert", "-key", "SIGHUP",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("moq relay -h does not mention %s:\n%s", want, out.String())
		}
	}
	var errOut strings.Builder
	if code := run(context.Background(), []string{"relay", "--max-streams", "lots"}, nil, io.Discard, &errOut); code != 2 {
		t.Errorf("a bad limit: exit code %d, want 2 (usage); stderr %q", code, errOut.String())
	}
}

// TestRelayCommand runs `moq relay` with a certificate of its own, JSON logs
// and the internal listener under a fake service manager: it reports ready,
// serves /health, reloads its certificate on SIGHUP, and on interrupt
// reports stopping and exits cleanly.
func TestRelayCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := relaytest.WriteCertificate(t, certFile, keyFile, "localhost")
	manager, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer manager.Close()
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "notify"))
	states := make(chan string, 4)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := manager.Read(buf)
			if err != nil {
				close(states)
				return
			}
			states <- string(buf[:n])
		}
	}()

	relayCtx, stop := context.WithCancel(ctx)
	defer stop()
	stderr := newSyncBuffer()
	exit := make(chan int, 1)
	go func() {
		exit <- run(relayCtx, []string{"relay", "--listen", "127.0.0.1:0", "--log-format", "json",
			"--internal-listen", "127.0.0.1:0", "--cert", certFile, "--key", keyFile, "--drain-timeout", "1s"},
			nil, io.Discard, stderr)
	}()
	if state := <-states; state != "READY=1" {
		t.Fatalf("first state %q, want READY=1", state)
	}
	logs := jsonLines(t, stderr.String())
	listening := findLog(logs, "moq relay listening")
	internal := findLog(logs, "internal listener: /metrics, /health, /ready, /debug/pprof/")
	if listening == nil || internal == nil {
		t.Fatalf("missing start-up lines in %s", stderr.String())
	}
	if listening["tcp"] != "HTTPS and wss://" || listening["certificate_sha256"] != first {
		t.Errorf("listening line %v: want TCP HTTPS and wss:// and the certificate's fingerprint", listening)
	}
	resp, err := http.Get("http://" + internal["addr"].(string) + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/health: %s", resp.Status)
	}

	second := relaytest.WriteCertificate(t, certFile, keyFile, "localhost")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The file watch may reload first; SIGHUP's reload then logs the same.
	if !stderr.waitFor(ctx, func(s string) bool { return strings.Contains(s, `"certificate_sha256":"`+second+`"`) }) {
		t.Fatalf("no reload to the new certificate logged:\n%s", stderr.String())
	}

	stop()
	if code := <-exit; code != 0 {
		t.Errorf("exit code %d after an interrupt; stderr:\n%s", code, stderr.String())
	}
	if state := <-states; state != "STOPPING=1" {
		t.Errorf("state after the interrupt %q, want STOPPING=1", state)
	}
}

// jsonLines decodes JSON log lines, failing on any line that is not JSON.
func jsonLines(t *testing.T, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(text) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// findLog returns the first log record with message msg.
func findLog(logs []map[string]any, msg string) map[string]any {
	for _, l := range logs {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

// TestRelayFlagErrors checks the relay's own command-line mistakes.
func TestRelayFlagErrors(t *testing.T) {
	dir := t.TempDir()
	runErrorCases(t, []errorCase{
		{"key missing", []string{"relay", "--listen", "127.0.0.1:0", "--cert", filepath.Join(dir, "c.pem")}, 1, "give one --key per --cert"},
		{"bad log format", []string{"relay", "--listen", "127.0.0.1:0", "--log-format", "xml"}, 1, "--log-format"},
		{"absent certificate", []string{"relay", "--listen", "127.0.0.1:0", "--cert", filepath.Join(dir, "c.pem"), "--key", filepath.Join(dir, "k.pem")}, 1, "c.pem"},
	})
}
