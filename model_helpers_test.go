package moq

import (
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// doneCtx is already cancelled: a blocking call given it returns at once,
// with context.Canceled when it would have had to wait.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// wouldBlock reports whether err says the call would have waited.
func wouldBlock(err error) bool { return errors.Is(err, context.Canceled) }

// nextGroupNow returns the next group, failing if NextGroup would block,
// errors or reports the end of the track.
func nextGroupNow(t testing.TB, c *TrackConsumer) *GroupConsumer {
	t.Helper()
	g, err := c.NextGroup(doneCtx)
	if err != nil {
		t.Fatalf("NextGroup: %v", err)
	}
	return g
}

// trackEndsNow fails unless NextGroup reports the clean end of the track:
// io.EOF itself, not wrapped, and no group.
func trackEndsNow(t testing.TB, c *TrackConsumer) {
	t.Helper()
	if g, err := c.NextGroup(doneCtx); g != nil || err != io.EOF {
		t.Fatalf("NextGroup = %v, %v; want the end of the track (io.EOF)", g, err)
	}
}

// noGroupYet fails unless NextGroup would block.
func noGroupYet(t testing.TB, c *TrackConsumer) {
	t.Helper()
	if g, err := c.NextGroup(doneCtx); !wouldBlock(err) {
		t.Fatalf("NextGroup should block, got group %v err %v", g, err)
	}
}

// trackOpen fails unless Closed would block.
func trackOpen(t testing.TB, c *TrackConsumer) {
	t.Helper()
	if err := c.Closed(doneCtx); !wouldBlock(err) {
		t.Fatalf("track should be open, Closed returned %v", err)
	}
}

// trackEnded returns what Closed reports, failing if it would block.
func trackEnded(t testing.TB, c *TrackConsumer) error {
	t.Helper()
	err := c.Closed(doneCtx)
	if wouldBlock(err) {
		t.Fatal("track should be closed")
	}
	return err
}

// trackFailed fails unless the track ended with an error matching want.
func trackFailed(t testing.TB, c *TrackConsumer, want error) {
	t.Helper()
	if err := trackEnded(t, c); !errors.Is(err, want) {
		t.Fatalf("Closed = %v, want %v", err, want)
	}
}

// isErr fails unless errors.Is(err, want).
func isErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// noErr fails on err.
func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eventually runs runtime.GC until done reports true, failing after a
// generous deadline. Cleanups run asynchronously after a collection, so done
// should wait briefly on the condition it checks.
func eventually(t testing.TB, done func(ctx context.Context) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		ok := done(ctx)
		cancel()
		if ok {
			return
		}
	}
	t.Fatal("condition not reached after garbage collection")
}

// checkIterEnd checks the errors an iterator yielded: none at a clean end
// (want nil), otherwise exactly one, matching want.
func checkIterEnd(t testing.TB, errs []error, want error) {
	t.Helper()
	if want == nil {
		if len(errs) != 0 {
			t.Fatalf("yielded errors %v at a clean end", errs)
		}
		return
	}
	if len(errs) != 1 {
		t.Fatalf("yielded errors %v, want exactly one", errs)
	}
	isErr(t, "yielded error", errs[0], want)
}
