package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/relay/relaytest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startRelay(t *testing.T) *relay.Relay { return relaytest.Start(t, relay.Config{}) }

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader, which
// also signals every write.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{written: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.written <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer satisfies ok.
func (b *syncBuffer) waitFor(ctx context.Context, ok func(string) bool) bool {
	for !ok(b.String()) {
		select {
		case <-b.written:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// TestPubSub publishes stdin lines with `moq pub` and reads them back with
// `moq sub` through a relay.
func TestPubSub(t *testing.T) {
	r := startRelay(t)
	url := "http://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stdin, feed := io.Pipe()
	pubErr := newSyncBuffer()
	pubDone := make(chan int, 1)
	go func() {
		pubDone <- run(ctx, []string{"pub", "--url", url, "--broadcast", "cli/test", "--group-every", "3"}, stdin, io.Discard, pubErr)
	}()
	// The first line is the rendezvous: a subscription starts at the newest group.
	if _, err := io.WriteString(feed, "line 0\n"); err != nil {
		t.Fatal(err)
	}
	view, err := r.Origin().Consume().ConsumeOnly(moq.NewPath("cli/test"))
	if err != nil {
		t.Fatal(err)
	}
	announced := view.Announcements()
	defer announced.Close()
	if _, err := announced.Next(ctx); err != nil {
		t.Fatalf("pub never announced: %v; stderr: %s", err, pubErr)
	}

	out, subErr := newSyncBuffer(), newSyncBuffer()
	subDone := make(chan int, 1)
	go func() {
		subDone <- run(ctx, []string{"sub", "--url", url, "--broadcast", "cli/test"}, nil, out, subErr)
	}()
	if !out.waitFor(ctx, func(s string) bool { return strings.Contains(s, "line 0\n") }) {
		t.Fatalf("sub printed %q; stderr: %s", out, subErr)
	}
	var want []string
	for i := 1; i <= 100; i++ {
		line := fmt.Sprintf("line %d", i)
		want = append(want, line)
		if _, err := io.WriteString(feed, line+"\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	_ = feed.Close()
	if code := <-pubDone; code != 0 {
		t.Fatalf("pub exited %d: %s", code, pubErr)
	}
	if code := <-subDone; code != 0 {
		t.Fatalf("sub exited %d: %s", code, subErr)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if got[0] != "line 0" {
		t.Fatalf("first line %q", got[0])
	}
	got = got[1:]
	// Groups travel on separate streams and may be printed in any order;
	// lines within a group keep theirs.
	slices.SortFunc(got, compareLines)
	if !slices.Equal(got, want) {
		t.Fatalf("sub printed %q, want %q", got, want)
	}
}

func compareLines(a, b string) int {
	na, _ := strconv.Atoi(strings.TrimPrefix(a, "line "))
	nb, _ := strconv.Atoi(strings.TrimPrefix(b, "line "))
	return na - nb
}

// TestErrors checks that common mistakes end with one clear line and a
// non-zero exit.
func TestErrors(t *testing.T) {
	r := startRelay(t)
	port := strconv.Itoa(r.Port())
	closed := closedPort(t)
	runErrorCases(t, []errorCase{
		{"no command", nil, 2, "usage"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"missing url", []string{"sub", "--broadcast", "x"}, 2, "missing --url"},
		{"bad scheme", []string{"sub", "--url", "ftp://127.0.0.1:" + port + "/", "--broadcast", "x"}, 1, "scheme must be"},
		{"relay down", []string{"sub", "--url", "http://127.0.0.1:" + closed + "/", "--broadcast", "x"}, 1, "is the relay running?"},
		{"not found", []string{"sub", "--url", "http://127.0.0.1:" + port + "/", "--broadcast", "nobody"}, 1, `broadcast "nobody" (track "0") not found`},
		{"untrusted certificate", []string{"sub", "--url", "https://127.0.0.1:" + port + "/", "--broadcast", "x"}, 1, "--fingerprint"},
		{"wrong fingerprint", []string{"sub", "--url", "https://127.0.0.1:" + port + "/", "--broadcast", "x", "--fingerprint", strings.Repeat("ab", 32)}, 1, "--fingerprint"},
		{"bad group size", []string{"pub", "--url", "http://127.0.0.1:" + port + "/", "--broadcast", "x", "--group-every", "0"}, 1, "--group-every"},
		{"bad log level", []string{"sub", "--url", "http://127.0.0.1:" + port + "/", "--broadcast", "x", "--log-level", "loud"}, 1, "--log-level"},
		{"clock without role", []string{"clock"}, 2, "usage: moq clock"},
	})
}

// errorCase is a command line that must fail with an exit code and a
// message on stderr.
type errorCase struct {
	name string
	args []string
	code int
	want string
}

func runErrorCases(t *testing.T, cases []errorCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			code := run(ctx, tt.args, strings.NewReader(""), io.Discard, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			if n := strings.Count(stderr.String(), tt.want); n != 1 {
				t.Errorf("stderr %q mentions %q %d times, want once", stderr.String(), tt.want, n)
			}
		})
	}
}

// closedPort returns a loopback TCP port with nothing listening.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	return port
}

// TestClock runs `moq clock pub` and `moq clock sub` and checks the printed
// times have the reference format.
func TestClock(t *testing.T) {
	r := startRelay(t)
	url := "http://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan int, 1)
	go func() { pubDone <- run(pubCtx, []string{"clock", "pub", "--url", url}, nil, io.Discard, io.Discard) }()
	defer func() {
		stopPub()
		<-pubDone
	}()

	subCtx, stopSub := context.WithCancel(ctx)
	out := newSyncBuffer()
	subDone := make(chan int, 1)
	go func() { subDone <- run(subCtx, []string{"clock", "sub", "--url", url}, nil, out, io.Discard) }()
	ok := out.waitFor(ctx, func(s string) bool { return strings.Count(s, "\n") >= 2 })
	stopSub()
	if code := <-subDone; code != 0 {
		t.Errorf("clock sub exited %d", code)
	}
	if !ok {
		t.Fatalf("clock sub printed %q", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n")[:2] {
		if _, err := time.Parse("2006-01-02 15:04:05", line); err != nil {
			t.Errorf("line %q is not a clock time: %v", line, err)
		}
	}
}

// TestSubReconnect restarts the relay under `moq sub --reconnect`: it
// connects again, to the new relay on the same port with a new certificate,
// and prints every line exactly once.
func TestSubReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	broadcast := moq.NewBroadcast()
	defer broadcast.Close()
	track, err := broadcast.CreateTrack(moq.Track{Name: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	write := func(from, to int) {
		for g := from; g <= to; g++ {
			if err := track.WriteFrame(fmt.Appendf(nil, "line %d", g)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A relay serving the broadcast from its own origin before it serves
	// anyone, so the subscriber never finds it missing.
	serve := func(listen string) (r *relay.Relay, stop func()) {
		r, err := relay.New(relay.Config{Listen: listen, Logger: relaytest.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		r.Origin().PublishBroadcast(moq.NewPath("cli/re"), broadcast.Consume())
		done := make(chan error, 1)
		go func() { done <- r.Run(context.Background()) }()
		return r, func() {
			r.Close()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
		}
	}
	first, stopFirst := serve("127.0.0.1:0")
	addr := "127.0.0.1:" + strconv.Itoa(first.Port())
	write(0, 0)

	out, subErr := newSyncBuffer(), newSyncBuffer()
	subDone := make(chan int, 1)
	go func() {
		subDone <- run(ctx, []string{"sub", "--url", "http://" + addr + "/", "--broadcast", "cli/re", "--reconnect"}, nil, out, subErr)
	}()
	// printed waits for lines 0..upto. The Client resumes after the newest
	// group it has, so the relay stops only once nothing is in flight.
	printed := func(upto int) {
		t.Helper()
		if !out.waitFor(ctx, func(s string) bool {
			for g := range upto + 1 {
				if !strings.Contains(s, fmt.Sprintf("line %d\n", g)) {
					return false
				}
			}
			return true
		}) {
			code := -1
			select {
			case code = <-subDone:
			default:
			}
			t.Fatalf("sub (exit %d) printed %q, not every line up to %d; stderr: %s", code, out, upto, subErr)
		}
	}
	printed(0)
	write(1, 10)
	printed(10)

	stopFirst()
	write(11, 15) // while no relay runs
	_, stopSecond := serve(addr)
	defer stopSecond()
	printed(15)
	write(16, 20)
	if err := track.Finish(); err != nil {
		t.Fatal(err)
	}
	if code := <-subDone; code != 0 {
		t.Fatalf("sub exited %d: %s", code, subErr)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	slices.SortFunc(got, compareLines)
	var want []string
	for g := range 21 {
		want = append(want, fmt.Sprintf("line %d", g))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sub printed %q, want %q", got, want)
	}
}
