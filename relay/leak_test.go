package relay_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/session"
)

// TestPublishChurnRetainsNothing publishes and unpublishes 10,000
// broadcasts at the relay while an idle session stays connected, then
// checks the live heap is back where it started: a session's Config.Publish
// is a view that queues nothing the peer did not ask for.
func TestPublishChurnRetainsNothing(t *testing.T) {
	const cycles = 10_000
	r := startRelay(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bystander := dial(t, ctx, r, "quic", session.Config{})
	churn := func(from, n int) {
		for i := from; i < from+n; i++ {
			b, err := r.Origin().CreateBroadcast(moq.NewPath("churn", strconv.Itoa(i)))
			if err != nil {
				t.Fatal(err)
			}
			b.Close()
		}
	}
	churn(0, 100) // warm up: first allocations of maps and pools
	before := heapInUse()
	churn(100, cycles)
	after := heapInUse()
	growth := int64(after) - int64(before)
	t.Logf("live heap %d → %d bytes over %d cycles (%+d)", before, after, cycles, growth)
	if growth > 1<<20 {
		t.Errorf("%d publish/unpublish cycles retained %d bytes, want < 1 MiB", cycles, growth)
	}
	if bystander.Err() != nil {
		t.Fatalf("the bystander session ended: %v", bystander.Err())
	}
}

// TestHTTPDialsLeaveNoGoroutines dials the relay 50 times by http:// URL
// (which fetches the certificate hash over HTTP first) and closes each
// session: afterwards the process runs exactly the goroutines it ran before.
func TestHTTPDialsLeaveNoGoroutines(t *testing.T) {
	r := startRelay(t)
	url := "http://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dialOnce := func() {
		sess, err := session.Dial(ctx, url, &session.Config{Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.Close(); err != nil {
			t.Fatal(err)
		}
	}
	dialOnce() // the relay's first connection starts its long-lived goroutines
	before := settledGoroutines(ctx, -1)
	for range 50 {
		dialOnce()
	}
	after := settledGoroutines(ctx, before)
	if after != before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before the dials, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// settledGoroutines waits until the number of goroutines reaches want (any
// stable number when want is negative) and returns it; it returns the last
// count once ctx is done.
func settledGoroutines(ctx context.Context, want int) int {
	last := -1
	for {
		n := runtime.NumGoroutine()
		if n == want || (want < 0 && n == last) {
			return n
		}
		last = n
		select {
		case <-ctx.Done():
			return n
		case <-time.After(50 * time.Millisecond):
		}
	}
}
