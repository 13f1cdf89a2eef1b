package bench

import (
	"math"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	// Every value falls in the bucket whose bounds hold it, and buckets are
	// contiguous.
	prevEnd := uint64(0)
	for i := range histBuckets - histSub {
		low, width := bucketBounds(i)
		if low != prevEnd {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, low, prevEnd)
		}
		for _, v := range []uint64{low, low + width/2, low + width - 1} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d (bucket [%d, %d))", v, got, i, low, low+width)
			}
		}
		if width > 1 && float64(width)/float64(low) > 1.0/histSub+1e-12 {
			t.Fatalf("bucket %d is %d wide at %d, coarser than 1/%d", i, width, low, histSub)
		}
		prevEnd = low + width
		if prevEnd == 0 { // wrapped past 2^64: the last bucket
			break
		}
	}
	if got := bucketOf(math.MaxUint64); got >= histBuckets {
		t.Fatalf("bucketOf(max) = %d, beyond %d buckets", got, histBuckets)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
		tol     float64 // relative
	}{
		{"empty", nil, 0.5, 0, 0},
		{"one", []time.Duration{7 * time.Millisecond}, 0.99, 7 * time.Millisecond, 0},
		{"exact small", []time.Duration{1 * time.Microsecond, 2 * time.Microsecond, 3 * time.Microsecond, 4 * time.Microsecond}, 0.5, 2 * time.Microsecond, 0},
		{"uniform p50", uniform(10000), 0.5, 5000 * time.Microsecond, 1.0 / 16},
		{"uniform p99", uniform(10000), 0.99, 9900 * time.Microsecond, 1.0 / 16},
		{"uniform p100", uniform(10000), 1, 10000 * time.Microsecond, 0},
		{"negative", []time.Duration{-time.Second}, 0.5, 0, 0},
		{"outlier", append(repeat(time.Millisecond, 999), 10*time.Second), 0.99, time.Millisecond, 1.0 / 16},
		{"seconds", repeat(3*time.Second, 10), 0.5, 3 * time.Second, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tc.samples {
				h.Record(d)
			}
			got := h.Quantile(tc.q)
			if diff := math.Abs(float64(got - tc.want)); diff > tc.tol*float64(tc.want) {
				t.Errorf("Quantile(%g) = %v, want %v ± %.1f%%", tc.q, got, tc.want, 100*tc.tol)
			}
			if h.Count() != uint64(len(tc.samples)) {
				t.Errorf("Count = %d, want %d", h.Count(), len(tc.samples))
			}
		})
	}
}

func TestHistogramMergeReset(t *testing.T) {
	var a, b Histogram
	for _, d := range uniform(100) {
		a.Record(d)
	}
	for _, d := range uniform(300)[200:] {
		b.Record(d)
	}
	a.Merge(&b)
	if a.Count() != 200 || a.Max() != 300*time.Microsecond {
		t.Fatalf("merged Count = %d, Max = %v; want 200, 300µs", a.Count(), a.Max())
	}
	if got := a.Quantile(0.5); got < 90*time.Microsecond || got > 110*time.Microsecond {
		t.Errorf("merged p50 = %v, want about 100µs", got)
	}
	if got := a.Quantile(0.01); got != 2*time.Microsecond {
		t.Errorf("merged p1 = %v, want 2µs", got)
	}
	a.Reset()
	if a.Count() != 0 || a.Max() != 0 || a.Quantile(0.5) != 0 {
		t.Errorf("after Reset: Count %d, Max %v, p50 %v", a.Count(), a.Max(), a.Quantile(0.5))
	}
}

func uniform(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Microsecond
	}
	return out
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestSeqTracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		op   string // "recv", "fail", "settle", "finish"
		seq  uint64
		at   int // seconds after t0; for settle, the deadline
		lost int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{"recv", 5, 0, 0}, {"recv", 6, 0, 0}, {"recv", 7, 0, 0}, {"finish", 0, 0, 0}}},
		{"starts anywhere", []step{{"recv", 100, 0, 0}, {"finish", 0, 0, 0}}},
		{"reordered", []step{{"recv", 1, 0, 0}, {"recv", 3, 1, 0}, {"recv", 2, 2, 0}, {"settle", 0, 10, 0}, {"finish", 0, 0, 0}}},
		{"gap settles", []step{{"recv", 1, 0, 0}, {"recv", 4, 1, 0}, {"settle", 0, 1, 0}, {"settle", 0, 2, 2}, {"recv", 5, 3, 0}, {"finish", 0, 0, 0}}},
		{"gap at finish", []step{{"recv", 1, 0, 0}, {"recv", 3, 1, 0}, {"finish", 0, 0, 1}}},
		{"late after settle counts once", []step{{"recv", 1, 0, 0}, {"recv", 3, 1, 0}, {"settle", 0, 5, 1}, {"recv", 2, 6, 0}, {"finish", 0, 0, 0}}},
		{"failed newest", []step{{"recv", 1, 0, 0}, {"fail", 2, 1, 1}, {"recv", 3, 2, 0}, {"finish", 0, 0, 0}}},
		{"failed missing", []step{{"recv", 1, 0, 0}, {"recv", 3, 1, 0}, {"fail", 2, 2, 1}, {"finish", 0, 0, 0}}},
		{"failed first", []step{{"fail", 9, 0, 1}, {"recv", 10, 1, 0}, {"finish", 0, 0, 0}}},
		{"failed twice", []step{{"recv", 1, 0, 0}, {"fail", 2, 1, 1}, {"fail", 2, 1, 0}, {"finish", 0, 0, 0}}},
		{"old group ignored", []step{{"recv", 10, 0, 0}, {"recv", 9, 0, 0}, {"finish", 0, 0, 0}}},
		{"huge gap", []step{{"recv", 0, 0, 0}, {"recv", maxTrackedGap + 1001, 0, 1000}, {"finish", 0, 0, maxTrackedGap}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newSeqTracker()
			for i, s := range tc.steps {
				var lost int64
				switch s.op {
				case "recv":
					lost = tr.received(s.seq, at(s.at))
				case "fail":
					lost = tr.failed(s.seq, at(s.at))
				case "settle":
					lost = tr.settle(at(s.at))
				case "finish":
					lost = tr.finish()
				}
				if lost != s.lost {
					t.Fatalf("step %d (%s %d at %ds): lost %d, want %d", i, s.op, s.seq, s.at, lost, s.lost)
				}
			}
		})
	}
}

func TestReport(t *testing.T) {
	start := time.Unix(100, 0)
	from := snapshot{at: start.Add(time.Second), sentBytes: 1000, sentFrames: 10, recvBytes: 500, recvGroups: 3, lostGroups: 1}
	to := snapshot{at: start.Add(3 * time.Second), sentBytes: 251000, sentFrames: 70, recvBytes: 500500, recvFrames: 40,
		recvGroups: 100, lostGroups: 2, connsUp: 4, subsUp: 3}
	var lat Histogram
	lat.Record(2 * time.Millisecond)
	r := newReport(start, from, to, &lat)
	want := Report{Time: to.at, Elapsed: 3, Interval: 2, ConnectionsUp: 4, Subscriptions: 3,
		SendMbps: 1, SendFPS: 30, RecvMbps: 2, RecvFPS: 20, GroupsReceived: 97, GroupsLost: 1,
		LatencyP50: 2, LatencyP99: 2, LatencyMax: 2, Latencies: 1}
	if r != want {
		t.Errorf("newReport =\n%+v\nwant\n%+v", r, want)
	}
	if d := r.Delivered(); math.Abs(d-97.0/98) > 1e-12 {
		t.Errorf("Delivered = %g, want 97/98", d)
	}
	if d := (Report{}).Delivered(); d != 1 {
		t.Errorf("Delivered with no groups = %g, want 1", d)
	}
}
