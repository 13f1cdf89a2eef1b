package relay_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/bench"
	"github.com/moqgo/moq/session"
)

// TestSoak runs the announce-churn preset and a steady 10 Mbit/s video
// track through one relay, sampling the live heap and the goroutines of the
// process (relay, publishers and subscribers all in it) as it goes, and
// fits a line to each: a leak shows as a slope. The run lasts 20 s in CI and
// MOQ_SOAK (a duration, such as 30m) otherwise; afterwards everything must
// be back to the baseline of before the load.
func TestSoak(t *testing.T) {
	duration := 20 * time.Second
	if v := os.Getenv("MOQ_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("MOQ_SOAK=%q: %v", v, err)
		}
		duration = d
	}
	interval := max(duration/60, time.Second)
	r := startRelay(t)
	url := "moqt://127.0.0.1:" + strconv.Itoa(r.Port())
	heap0, goroutines0 := liveHeap(), runtime.NumGoroutine()

	churn := bench.DefaultConfig()
	if err := bench.LoadPreset(&churn, "announce-churn"); err != nil {
		t.Fatal(err)
	}
	video := bench.DefaultConfig()
	video.Connections, video.Publishers = bench.Fixed(2), bench.Fixed(1)
	video.Rate, video.Size, video.Group = bench.Fixed(30), bench.Fixed(41_667), bench.Fixed(60) // 10 Mbit/s, 2 s groups
	var wg sync.WaitGroup
	results := make([]bench.Report, 2)
	errs := make([]error, 2)
	for i, cfg := range []*bench.Config{&churn, &video} {
		cfg.URL, cfg.Dial = url, session.DialOptions{Fingerprint: r.Fingerprint()}
		cfg.Prefix, cfg.Seed = fmt.Sprintf("soak%d", i), uint64(i+1)
		cfg.Duration, cfg.Startup, cfg.Report = duration, 2*time.Second, time.Hour
		wg.Go(func() { results[i], errs[i] = bench.Run(context.Background(), *cfg, nil) })
	}

	var heap, goroutines series
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	start := time.Now()
	ticker := time.NewTicker(interval)
sampling:
	for {
		select {
		case <-done:
			break sampling
		case now := <-ticker.C:
			// Skip the startup: the load is still ramping up.
			if now.Sub(start) > 5*time.Second {
				heap.add(now.Sub(start), float64(liveHeap()))
				goroutines.add(now.Sub(start), float64(runtime.NumGoroutine()))
			}
		}
	}
	ticker.Stop()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
		t.Logf("load %d:\n%s", i, results[i].Summary())
		if results[i].GroupsReceived == 0 {
			t.Errorf("load %d delivered nothing", i)
		}
	}
	if n := len(heap.x); n >= 3 {
		t.Logf("over %v, %d samples: live heap %.1f → %.1f MiB, slope %+.2f MiB/hour; goroutines %.0f → %.0f, slope %+.1f/hour",
			time.Since(start).Round(time.Second), n, heap.y[0]/(1<<20), heap.y[n-1]/(1<<20), heap.slope()/(1<<20),
			goroutines.y[0], goroutines.y[n-1], goroutines.slope())
	}

	// Once the load is gone, so is what it held.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if n := settledGoroutines(ctx, goroutines0); n != goroutines0 {
		t.Errorf("%d goroutines after the load, %d before", n, goroutines0)
	}
	if grown := int64(liveHeap()) - int64(heap0); grown > 4<<20 {
		t.Errorf("live heap %d bytes above the baseline after the load", grown)
	}
}

// liveHeap returns the bytes of live objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// series is a set of samples over time, for a least-squares slope.
type series struct{ x, y []float64 }

func (s *series) add(at time.Duration, v float64) {
	s.x = append(s.x, at.Hours())
	s.y = append(s.y, v)
}

// slope returns the least-squares slope of y over x, per hour.
func (s *series) slope() float64 {
	n := float64(len(s.x))
	var sx, sy, sxx, sxy float64
	for i, x := range s.x {
		sx += x
		sy += s.y[i]
		sxx += x * x
		sxy += x * s.y[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}
