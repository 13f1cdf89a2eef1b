package bench

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// histSubBits sets the histogram precision: each power of two of
// microseconds is split into 1<<histSubBits buckets, so a reported quantile is
// within 1/16 (6.25%) of the true value; below 32 µs it is exact.
const (
	histSubBits = 4
	histSub     = 1 << histSubBits
	histBuckets = (64-histSubBits+1)*histSub + histSub
)

// Histogram records durations at microsecond resolution in log-linear
// buckets, for quantiles over any number of samples in constant memory. The
// zero value is empty and ready to use; it is not safe for concurrent use.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
	min    time.Duration
}

func bucketOf(us uint64) int {
	if us < histSub {
		return int(us)
	}
	e := bits.Len64(us) - 1
	return (e-histSubBits+1)*histSub + int((us>>(e-histSubBits))&(histSub-1))
}

// bucketBounds returns the lowest value of bucket i and its width.
func bucketBounds(i int) (low, width uint64) {
	if i < histSub {
		return uint64(i), 1
	}
	e := i/histSub + histSubBits - 1
	m := uint64(i % histSub)
	shift := e - histSubBits
	return (histSub + m) << shift, 1 << shift
}

// Record adds one sample; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.n++
	h.max = max(h.max, d)
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest sample, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the q-quantile (0 < q <= 1) of the samples: the middle
// of the bucket holding the sample of rank ceil(q·n), clamped to the exact
// smallest and largest samples, or exactly the largest for the last rank.
// It returns 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	if rank >= h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		low, width := bucketBounds(i)
		mid := time.Duration(low)*time.Microsecond + time.Duration(width)*time.Microsecond/2
		if width == 1 {
			mid = time.Duration(low) * time.Microsecond
		}
		return min(max(mid, h.min), h.max)
	}
	return h.max
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// maxTrackedGap bounds how many missing sequences one jump forward may add to
// a tracker's missing set; a bigger jump counts the excess as lost at once.
const maxTrackedGap = 4096

// seqTracker follows the group sequences one subscription receives and counts
// the ones that never arrive. Groups travel on independent streams and may
// overtake each other, so a sequence is only declared lost once it has been
// missing for a while (settle) or the subscription ended (finish). It is safe
// for concurrent use.
type seqTracker struct {
	mu      sync.Mutex
	started bool
	high    uint64               // highest sequence accounted for
	missing map[uint64]time.Time // sequences below high not seen yet, and since when
}

func newSeqTracker() *seqTracker {
	return &seqTracker{missing: make(map[uint64]time.Time)}
}

// advanceLocked moves high up to seq, marking the sequences skipped over as
// missing since now; it returns how many were lost outright.
func (t *seqTracker) advanceLocked(seq uint64, now time.Time) (lost int64) {
	gap := seq - t.high - 1
	from := t.high + 1
	if gap > maxTrackedGap {
		lost = int64(gap - maxTrackedGap)
		from = seq - maxTrackedGap
	}
	for s := from; s < seq; s++ {
		t.missing[s] = now
	}
	t.high = seq
	return lost
}

// received records a complete group; it returns how many groups were found
// lost outright.
func (t *seqTracker) received(seq uint64, now time.Time) (lost int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !t.started:
		t.started, t.high = true, seq
	case seq > t.high:
		lost = t.advanceLocked(seq, now)
	default:
		delete(t.missing, seq)
	}
	return lost
}

// failed records a group that started but did not complete; it returns how
// many groups were found lost, this one included.
func (t *seqTracker) failed(seq uint64, now time.Time) (lost int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !t.started:
		t.started, t.high = true, seq
		return 1
	case seq > t.high:
		return t.advanceLocked(seq, now) + 1
	}
	if _, ok := t.missing[seq]; ok {
		delete(t.missing, seq)
		return 1
	}
	return 0
}

// settle declares lost the sequences missing since before deadline.
func (t *seqTracker) settle(deadline time.Time) (lost int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for seq, since := range t.missing {
		if since.Before(deadline) {
			delete(t.missing, seq)
			lost++
		}
	}
	return lost
}

// finish declares every missing sequence lost.
func (t *seqTracker) finish() (lost int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lost = int64(len(t.missing))
	clear(t.missing)
	return lost
}

// counters are the cumulative totals of a run.
type counters struct {
	sentBytes, sentFrames, sentGroups atomic.Int64
	recvBytes, recvFrames, recvGroups atomic.Int64
	lostGroups, badGroups             atomic.Int64
	connErrors, subErrors             atomic.Int64
	connsUp, subsUp                   atomic.Int64
}

// snapshot is a copy of the counters at one moment.
type snapshot struct {
	at                                time.Time
	sentBytes, sentFrames, sentGroups int64
	recvBytes, recvFrames, recvGroups int64
	lostGroups, badGroups             int64
	connErrors, subErrors             int64
	connsUp, subsUp                   int64
}

func (c *counters) snapshot(now time.Time) snapshot {
	return snapshot{
		at:         now,
		sentBytes:  c.sentBytes.Load(),
		sentFrames: c.sentFrames.Load(),
		sentGroups: c.sentGroups.Load(),
		recvBytes:  c.recvBytes.Load(),
		recvFrames: c.recvFrames.Load(),
		recvGroups: c.recvGroups.Load(),
		lostGroups: c.lostGroups.Load(),
		badGroups:  c.badGroups.Load(),
		connErrors: c.connErrors.Load(),
		subErrors:  c.subErrors.Load(),
		connsUp:    c.connsUp.Load(),
		subsUp:     c.subsUp.Load(),
	}
}

// Report is one line of the live report, or the final summary. Counts and
// rates cover the report's interval: since the previous report for live
// lines, the steady phase after the startup window for the summary.
type Report struct {
	Time     time.Time `json:"time"`
	Elapsed  float64   `json:"elapsed_s"`  // since the run started
	Interval float64   `json:"interval_s"` // length of the window the numbers cover
	Final    bool      `json:"final"`

	Connections      int   `json:"connections"`
	ConnectionsUp    int64 `json:"connections_up"`
	ConnectionErrors int64 `json:"connection_errors"` // cumulative
	Subscriptions    int64 `json:"subscriptions_up"`
	SubscribeErrors  int64 `json:"subscribe_errors"` // cumulative

	SendMbps       float64 `json:"send_mbps"`
	SendFPS        float64 `json:"send_fps"`
	GroupsSent     int64   `json:"groups_sent"`
	RecvMbps       float64 `json:"recv_mbps"`
	RecvFPS        float64 `json:"recv_fps"`
	GroupsReceived int64   `json:"groups_received"`
	GroupsLost     int64   `json:"groups_lost"`
	BadGroups      int64   `json:"bad_groups"` // groups without a valid bench header

	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	LatencyMax float64 `json:"latency_max_ms"`
	Latencies  uint64  `json:"latency_samples"`
}

// Delivered is the fraction of groups received among those received or lost;
// 1 when there were none.
func (r Report) Delivered() float64 {
	if total := r.GroupsReceived + r.GroupsLost; total > 0 {
		return float64(r.GroupsReceived) / float64(total)
	}
	return 1
}

// newReport fills a report with the difference between two snapshots.
func newReport(start time.Time, from, to snapshot, lat *Histogram) Report {
	secs := to.at.Sub(from.at).Seconds()
	rate := func(v int64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(v) / secs
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Report{
		Time:             to.at,
		Elapsed:          to.at.Sub(start).Seconds(),
		Interval:         secs,
		ConnectionsUp:    to.connsUp,
		ConnectionErrors: to.connErrors,
		Subscriptions:    to.subsUp,
		SubscribeErrors:  to.subErrors,
		SendMbps:         rate(to.sentBytes-from.sentBytes) * 8 / 1e6,
		SendFPS:          rate(to.sentFrames - from.sentFrames),
		GroupsSent:       to.sentGroups - from.sentGroups,
		RecvMbps:         rate(to.recvBytes-from.recvBytes) * 8 / 1e6,
		RecvFPS:          rate(to.recvFrames - from.recvFrames),
		GroupsReceived:   to.recvGroups - from.recvGroups,
		GroupsLost:       to.lostGroups - from.lostGroups,
		BadGroups:        to.badGroups - from.badGroups,
		LatencyP50:       ms(lat.Quantile(0.50)),
		LatencyP99:       ms(lat.Quantile(0.99)),
		LatencyMax:       ms(lat.Max()),
		Latencies:        lat.Count(),
	}
}
