package relay_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
)

// Parameters of TestPublisherExitEndsBroadcast.
const (
	// exitRuns is how many `moq pub` processes exit per transport.
	exitRuns = 50
	// exitParallel is how many of them run at once per transport.
	exitParallel = 5
	// exitBound is the longest a publisher's exit may take to reach the
	// relay as an ended broadcast.
	exitBound = time.Second
	// exitGiveUp is how long after an exit the test still waits for the
	// ended broadcast, to measure how late it comes. A publisher whose close
	// never left its machine (a ghost) ends only at the relay's 30 s idle
	// timeout; it is reported as missing.
	exitGiveUp = 3 * time.Second
	// exitProcessLimit is how long one publisher may run: connecting,
	// publishing and exiting take milliseconds.
	exitProcessLimit = 10 * time.Second
)

// TestPublisherExitEndsBroadcast runs `moq pub` as a real process, 50 times
// per transport: each publishes a line from stdin, reaches the end of stdin,
// closes its session and exits. Every exit must reach the relay as an ended
// broadcast within a second of the process exit. A client whose Close
// returns before its close has been handed to the socket exits before the
// relay is told; the relay then keeps the broadcast announced until its idle
// timeout, and viewers see a ghost publisher.
//
// The distribution of exit → ended is logged per transport (negative when
// the relay saw the end before the test saw the process exit).
//
// Over raw QUIC and WebTransport only the close the process sent before it
// exited tells the relay: the kernel sends nothing when a UDP socket closes.
// Over WebSocket the kernel's FIN or RST of the TCP connection at exit ends
// the session even when the QMux close did not get out, so there the test
// catches a close that keeps the process from exiting, not a lost close.
func TestPublisherExitEndsBroadcast(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/moq and runs 150 processes")
	}
	bin := buildMoq(t)
	r := startRelay(t)
	w := watchAnnouncements(t, r, moq.NewPath("exit"))

	for _, tr := range []string{"quic", "webtransport", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			runExits(t, bin, r, w, tr)
		})
	}
}

// buildMoq builds cmd/moq into the test's temporary directory.
func buildMoq(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "moq")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/moq").CombinedOutput()
	if err != nil {
		t.Fatalf("building cmd/moq: %v\n%s", err, out)
	}
	return bin
}

// exitRun is one publisher process: when it exited and when the relay
// announced its broadcast ended.
type exitRun struct {
	path   string
	exited time.Time
	ev     *pathEvents
	err    error
}

// runExits runs exitRuns publishers over transport, exitParallel at a time,
// and checks the delay between each exit and the end of its broadcast.
func runExits(t *testing.T, bin string, r *relay.Relay, w *announceWatcher, transport string) {
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()

	runs := make([]exitRun, exitRuns)
	next := make(chan int)
	var wg sync.WaitGroup
	for range exitParallel {
		wg.Go(func() {
			for i := range next {
				run := &runs[i]
				run.path = "exit/" + transport + "/" + strconv.Itoa(i)
				run.ev = w.register(run.path)
				run.exited, run.err = publishAndExit(ctx, bin, r, transport, run.path, run.ev)
			}
		})
	}
	for i := range runs {
		next <- i
	}
	close(next)
	wg.Wait()

	var delays []time.Duration // of the runs whose end arrived in time to measure
	var late []string
	for i := range runs {
		run := &runs[i]
		if run.err != nil {
			t.Errorf("%s: %v", run.path, run.err)
			continue
		}
		ended, ok := run.ev.waitEnded(ctx, run.exited.Add(exitGiveUp))
		if !ok {
			late = append(late, fmt.Sprintf("%s: not ended %v after exit", run.path, exitGiveUp))
			continue
		}
		d := ended.Sub(run.exited)
		delays = append(delays, d)
		if d > exitBound {
			late = append(late, fmt.Sprintf("%s: ended %v after exit", run.path, d.Round(time.Millisecond)))
		}
	}
	slices.Sort(delays)
	summary := fmt.Sprintf("%s: %d exits, %d ended within %v, %d later or never (gave up after %v); exit→ended %s",
		transport, len(runs), len(runs)-len(late), exitBound, len(late), exitGiveUp, distribution(delays))
	t.Log(summary)
	if len(late) > 0 {
		t.Errorf("%d of %d publisher exits did not reach the relay as an ended broadcast within %v:\n%s\n%s",
			len(late), len(runs), exitBound, strings.Join(late, "\n"), summary)
	}
}

// publishAndExit starts `moq pub` for path, feeds it a line, waits until the
// relay has the broadcast, then ends stdin and waits for the process to
// exit. It returns when the process exited.
func publishAndExit(ctx context.Context, bin string, r *relay.Relay, transport, path string, ev *pathEvents) (time.Time, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, exitProcessLimit,
		fmt.Errorf("moq pub still running %v after it started: killed", exitProcessLimit))
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "pub", "--url", relayURL(r, transport), "--fingerprint", r.Fingerprint(), "--broadcast", path)
	cmd.WaitDelay = time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return time.Time{}, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return time.Time{}, err
	}
	fail := func(err error) (time.Time, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return time.Time{}, fmt.Errorf("%w; stderr: %q", err, stderr.String())
	}
	if _, err := io.WriteString(stdin, "hello\n"); err != nil {
		return fail(fmt.Errorf("writing stdin: %w", err))
	}
	select {
	case <-ev.active:
	case <-time.After(10 * time.Second):
		return fail(fmt.Errorf("broadcast not announced at the relay after 10s"))
	case <-ctx.Done():
		return fail(context.Cause(ctx))
	}
	if err := stdin.Close(); err != nil {
		return fail(fmt.Errorf("closing stdin: %w", err))
	}
	err = cmd.Wait()
	exited := time.Now()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
		return time.Time{}, fmt.Errorf("moq pub: %w; stderr: %q", err, stderr.String())
	}
	return exited, nil
}

// distribution summarises sorted durations.
func distribution(d []time.Duration) string {
	if len(d) == 0 {
		return "(no samples)"
	}
	q := func(p float64) time.Duration {
		return d[max(0, int(math.Ceil(p*float64(len(d))))-1)].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("min %v, p50 %v, p90 %v, p99 %v, max %v (n=%d)",
		d[0].Round(100*time.Microsecond), q(0.5), q(0.9), q(0.99), d[len(d)-1].Round(100*time.Microsecond), len(d))
}

// announceWatcher records when the relay announces and unannounces the
// broadcasts of registered paths.
type announceWatcher struct {
	mu    sync.Mutex
	paths map[string]*pathEvents
}

// pathEvents are the announcements of one path, which is published once.
type pathEvents struct {
	active  chan struct{} // closed when the broadcast is announced
	ended   chan struct{} // closed when it is unannounced
	endedAt time.Time     // set before ended is closed
}

// watchAnnouncements follows the relay's announcements under prefix until
// the test ends.
func watchAnnouncements(t *testing.T, r *relay.Relay, prefix moq.Path) *announceWatcher {
	view, err := r.Origin().Consume().ConsumeOnly(prefix)
	if err != nil {
		t.Fatal(err)
	}
	a := view.Announcements()
	w := &announceWatcher{paths: make(map[string]*pathEvents)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			an, err := a.Next(context.Background())
			if err != nil { // io.EOF after Close
				return
			}
			now := time.Now()
			w.mu.Lock()
			ev := w.paths[an.Path.String()]
			w.mu.Unlock()
			if ev == nil {
				continue
			}
			if an.Broadcast != nil {
				closeOnce(ev.active)
				continue
			}
			select {
			case <-ev.ended:
			default:
				ev.endedAt = now
				close(ev.ended)
			}
		}
	}()
	t.Cleanup(func() {
		a.Close()
		<-done
	})
	return w
}

func (w *announceWatcher) register(path string) *pathEvents {
	ev := &pathEvents{active: make(chan struct{}), ended: make(chan struct{})}
	w.mu.Lock()
	w.paths[path] = ev
	w.mu.Unlock()
	return ev
}

// waitEnded returns when the path was unannounced, waiting until deadline
// at most; ok is false when it was not by then.
func (ev *pathEvents) waitEnded(ctx context.Context, deadline time.Time) (time.Time, bool) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ev.ended:
		return ev.endedAt, true
	case <-t.C:
	case <-ctx.Done():
	}
	select {
	case <-ev.ended:
		return ev.endedAt, true
	default:
		return time.Time{}, false
	}
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}
