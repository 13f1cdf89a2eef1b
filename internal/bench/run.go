// Package bench is the engine of "moq bench": a load generator for moq-lite
// relays. It opens many sessions, publishes tracks with a configurable shape
// (frame rate, frame size, frames per group, broadcast churn), subscribes to
// each other's broadcasts as they are announced, and measures what arrives:
// throughput, end-to-end latency from a header in each group's first frame,
// and groups that never arrived.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/session"
)

const (
	// trackName is the name of the one track in every bench broadcast.
	trackName = "bench"
	// dialTimeout bounds connecting one session.
	dialTimeout = 10 * time.Second
	// lossTimeout is how long a group may be missing while later groups
	// arrive before it counts as lost.
	lossTimeout = 3 * time.Second
	// drainTimeout bounds the wait, after publishing stops, for subscribers
	// to receive what is in flight.
	drainTimeout = 5 * time.Second
	// endedGrace is how long a failed subscription waits to learn that its
	// broadcast ended, which excuses the failure.
	endedGrace = time.Second
	// publisherCacheAge and subscriberCacheAge shorten the tracks' group
	// caches from moq.DefaultCacheAge: a load generator has no late joiners
	// to serve, and a 30 s cache per track would make its memory grow with
	// the bit rate of everything it sends and receives.
	publisherCacheAge  = 5 * time.Second
	subscriberCacheAge = 2 * time.Second
)

// ErrNoConnection is returned when not a single session could be opened; it
// wraps the first connection error.
var ErrNoConnection = errors.New("bench: no connection succeeded")

// shape is the load of one connection, rolled from the Config ranges.
type shape struct {
	publish, subscribe int
	rate               float64
	size               int
	group              int // frames per group, at least 1
	lifetime           time.Duration
}

// engine is one run.
type engine struct {
	cfg   Config
	log   *slog.Logger
	conns int
	start time.Time
	c     counters

	latMu    sync.Mutex
	interval Histogram // since the last live report
	steady   Histogram // since the end of the startup window

	trackMu  sync.Mutex
	trackers map[*seqTracker]struct{}

	errMu    sync.Mutex
	firstErr error
	everUp   atomic.Bool
	// unreachable is closed when a connection fails before any succeeded:
	// the URL or the trust settings are wrong, and the run stops at once.
	unreachable     chan struct{}
	unreachableOnce sync.Once

	nextTrackID atomic.Uint64

	// Shutdown happens in phases, each with its own context: publishing
	// stops first, then subscribers get a while to receive what is in flight,
	// then sessions close.
	pubCtx    context.Context
	stopPub   context.CancelFunc
	subCtx    context.Context
	stopSub   context.CancelFunc
	connCtx   context.Context
	stopConns context.CancelFunc
	pubWG     sync.WaitGroup // publishing goroutines
	subWG     sync.WaitGroup // subscription goroutines
	connWG    sync.WaitGroup // connection goroutines
}

// Run generates the load described by cfg until cfg.Duration has passed or
// ctx is done, calls report (when not nil) with a live Report every
// cfg.Report, and returns the final summary. Stopping is graceful either way:
// publishers finish their tracks, subscribers get up to five seconds to
// receive what is in flight, then every session is closed cleanly, and
// every goroutine has exited when Run returns. When a connection fails
// before any succeeded, the relay is taken as unreachable: the run stops at
// once and the error wraps ErrNoConnection and the connection's error.
func Run(ctx context.Context, cfg Config, report func(Report)) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	e := &engine{cfg: cfg, log: cfg.Logger, trackers: make(map[*seqTracker]struct{}), unreachable: make(chan struct{})}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	e.conns = cfg.Connections.RollInt(rng)
	publishers := e.conns
	if cfg.Publishers.Max > 0 {
		publishers = min(cfg.Publishers.RollInt(rng), e.conns)
	}
	e.pubCtx, e.stopPub = context.WithCancel(context.Background())
	e.subCtx, e.stopSub = context.WithCancel(context.Background())
	e.connCtx, e.stopConns = context.WithCancel(context.Background())
	defer func() {
		e.stopPub()
		e.stopSub()
		e.stopConns()
	}()

	e.start = time.Now()
	prev := e.c.snapshot(e.start)
	steadyFrom := prev
	startup := min(cfg.Startup, cfg.Duration)
	for i := range e.conns {
		connRng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
		sh := rollShape(cfg, connRng, i < publishers)
		at := e.start
		if e.conns > 1 {
			at = at.Add(startup * time.Duration(i) / time.Duration(e.conns))
		}
		e.connWG.Add(1)
		go e.runConn(i, at, sh, connRng)
	}

	ticker := time.NewTicker(cfg.Report)
	defer ticker.Stop()
	steadyTimer := time.NewTimer(startup)
	defer steadyTimer.Stop()
	endTimer := time.NewTimer(cfg.Duration)
	defer endTimer.Stop()
loop:
	for {
		select {
		case <-ticker.C:
			now := time.Now()
			e.settle(now.Add(-lossTimeout))
			snap := e.c.snapshot(now)
			e.latMu.Lock()
			r := newReport(e.start, prev, snap, &e.interval)
			e.interval.Reset()
			e.latMu.Unlock()
			r.Connections = e.conns
			prev = snap
			if report != nil {
				report(r)
			}
		case <-steadyTimer.C:
			steadyFrom = e.c.snapshot(time.Now())
			e.latMu.Lock()
			e.steady.Reset()
			e.latMu.Unlock()
		case <-endTimer.C:
			break loop
		case <-e.unreachable:
			break loop
		case <-ctx.Done():
			break loop
		}
	}

	stopped := time.Now()
	atStop := e.c.snapshot(stopped)
	e.shutdown()
	// Counters include what arrived while draining; the interval ends when
	// publishing stopped.
	final := e.c.snapshot(stopped)
	e.latMu.Lock()
	summary := newReport(e.start, steadyFrom, final, &e.steady)
	e.latMu.Unlock()
	summary.Final = true
	summary.Connections = e.conns
	// Nothing is up any more: report what was up when the load stopped.
	summary.ConnectionsUp = atStop.connsUp
	summary.Subscriptions = atStop.subsUp
	if !e.everUp.Load() {
		e.errMu.Lock()
		defer e.errMu.Unlock()
		if e.firstErr == nil {
			return summary, ErrNoConnection
		}
		return summary, fmt.Errorf("%w: %w", ErrNoConnection, e.firstErr)
	}
	return summary, nil
}

// rollShape rolls one connection's load.
func rollShape(cfg Config, rng *rand.Rand, publishes bool) shape {
	sh := shape{
		publish:   cfg.Publish.RollInt(rng),
		subscribe: cfg.Subscribe.RollInt(rng),
		rate:      cfg.Rate.Roll(rng),
		size:      cfg.Size.RollInt(rng),
		group:     max(cfg.Group.RollInt(rng), 1),
		lifetime:  time.Duration(cfg.Lifetime.Roll(rng) * float64(time.Second)),
	}
	if !publishes {
		sh.publish = 0
	}
	return sh
}

// shutdown stops the run in phases and waits for every goroutine.
func (e *engine) shutdown() {
	e.stopPub()
	e.pubWG.Wait()

	drained := make(chan struct{})
	go func() {
		e.subWG.Wait()
		close(drained)
	}()
	timer := time.NewTimer(drainTimeout)
	select {
	case <-drained:
	case <-timer.C:
	}
	timer.Stop()
	e.stopSub()
	<-drained

	e.stopConns()
	e.connWG.Wait()
}

// fail records a connection-level error.
func (e *engine) fail(err error) {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	if e.firstErr == nil {
		e.firstErr = err
	}
}

// settle declares lost the groups missing since before deadline.
func (e *engine) settle(deadline time.Time) {
	e.trackMu.Lock()
	defer e.trackMu.Unlock()
	for t := range e.trackers {
		e.c.lostGroups.Add(t.settle(deadline))
	}
}

func (e *engine) recordLatency(d time.Duration) {
	e.latMu.Lock()
	e.interval.Record(d)
	e.steady.Record(d)
	e.latMu.Unlock()
}

// runConn opens connection i at time at and runs its publishers and
// subscriptions until the run ends or the session fails.
func (e *engine) runConn(i int, at time.Time, sh shape, rng *rand.Rand) {
	defer e.connWG.Done()
	if wait := time.Until(at); wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-e.pubCtx.Done():
			timer.Stop()
			return
		}
	}

	publish := moq.NewOrigin()
	cfg := session.Config{DialOptions: e.cfg.Dial, Logger: e.log.With("connection", i)}
	if sh.publish > 0 {
		cfg.Publish = publish.Consume()
	}
	prefix := moq.NewPath(e.cfg.Prefix)
	if sh.subscribe > 0 {
		// The empty origin allows every prefix.
		cfg.Consume, _ = moq.NewOrigin().PublishOnly(prefix)
	}
	ctx, cancel := context.WithTimeout(e.pubCtx, dialTimeout)
	sess, err := session.Dial(ctx, e.cfg.URL, &cfg)
	cancel()
	if err != nil {
		if e.pubCtx.Err() != nil {
			e.fail(fmt.Errorf("no answer before the run ended: %w", err))
		} else {
			e.c.connErrors.Add(1)
			e.fail(err)
			e.log.Warn("connection failed", "connection", i, "err", err)
			if !e.everUp.Load() {
				e.unreachableOnce.Do(func() { close(e.unreachable) })
			}
		}
		return
	}
	e.everUp.Store(true)
	e.c.connsUp.Add(1)
	defer e.c.connsUp.Add(-1)

	// The connection's own work ends with the run or with its session.
	ctx, cancel = context.WithCancel(e.pubCtx)
	defer cancel()
	own := prefix.Join(moq.NewPath("c" + strconv.Itoa(i)))
	for b := range sh.publish {
		e.pubWG.Add(1)
		go e.publishBroadcast(ctx, publish, own, b, sh, rng.Uint64())
	}
	if sh.subscribe > 0 {
		e.subWG.Add(1)
		go e.subscribeLoop(ctx, cfg.Consume.Consume().Announcements(), own, sh.subscribe, rng.Uint64())
	}

	select {
	case <-e.connCtx.Done():
	case <-sess.Done():
		if e.connCtx.Err() == nil {
			e.c.connErrors.Add(1)
			err := sess.Err()
			if err == nil {
				err = errors.New("session closed by the relay")
			}
			e.log.Warn("connection lost", "connection", i, "err", err)
		}
	}
	cancel()
	_ = sess.Close()
}

// publishBroadcast publishes broadcast b of a connection until ctx is done,
// replacing it with a new generation every lifetime when that is set.
func (e *engine) publishBroadcast(ctx context.Context, origin *moq.OriginProducer, own moq.Path, b int, sh shape, seed uint64) {
	defer e.pubWG.Done()
	filler := make([]byte, sh.size)
	rng := rand.New(rand.NewPCG(seed, 0))
	for i := range filler {
		filler[i] = byte(rng.Uint32())
	}
	for gen := 0; ctx.Err() == nil; gen++ {
		path := own.Join(moq.NewPath(fmt.Sprintf("b%d-%d", b, gen)))
		broadcast, err := origin.CreateBroadcast(path)
		if err != nil {
			e.log.Warn("cannot publish", "broadcast", path, "err", err)
			return
		}
		track, err := broadcast.CreateTrack(moq.Track{Name: trackName})
		if err != nil {
			broadcast.Close()
			e.log.Warn("cannot create track", "broadcast", path, "err", err)
			return
		}
		track.SetCacheAge(publisherCacheAge)
		life, cancel := ctx, context.CancelFunc(func() {})
		if sh.lifetime > 0 {
			life, cancel = context.WithTimeout(ctx, sh.lifetime)
		}
		e.publishTrack(life, track, e.nextTrackID.Add(1), sh, filler)
		cancel()
		_ = track.Finish()
		track.Close()
		broadcast.Close()
	}
}

// publishTrack writes frames at the shape's rate until ctx is done. The
// first frame of each group carries a Header.
func (e *engine) publishTrack(ctx context.Context, track *moq.TrackProducer, id uint64, sh shape, filler []byte) {
	ticker := time.NewTicker(time.Duration(float64(time.Second) / sh.rate))
	defer ticker.Stop()
	var (
		group  *moq.GroupProducer
		frames int
	)
	defer func() {
		if group != nil {
			_ = group.Finish()
			group.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		payload := filler
		if group == nil {
			var err error
			if group, err = track.AppendGroup(); err != nil {
				e.log.Warn("cannot start a group", "err", err)
				return
			}
			frames = 0
			payload = make([]byte, max(sh.size, HeaderSize))
			AppendHeader(payload[:0], Header{Publisher: id, Sequence: group.Sequence(), Sent: time.Now()})
			copy(payload[HeaderSize:], filler)
			e.c.sentGroups.Add(1)
		}
		if err := group.WriteFrame(payload); err != nil {
			e.log.Warn("cannot write a frame", "err", err)
			return
		}
		e.c.sentBytes.Add(int64(len(payload)))
		e.c.sentFrames.Add(1)
		if frames++; frames == sh.group {
			_ = group.Finish()
			group.Close()
			group = nil
		}
	}
}

// subscribeLoop keeps want subscriptions running to broadcasts announced by
// other connections, replacing each one that ends, until ctx is done.
func (e *engine) subscribeLoop(ctx context.Context, announced *moq.Announcements, own moq.Path, want int, seed uint64) {
	defer e.subWG.Done()
	defer announced.Close()
	rng := rand.New(rand.NewPCG(seed, 0))

	announces := make(chan moq.Announce)
	e.subWG.Add(1)
	go func() {
		defer e.subWG.Done()
		for {
			a, err := announced.Next(ctx)
			if err != nil {
				return
			}
			select {
			case announces <- a:
			case <-ctx.Done():
				return
			}
		}
	}()

	candidates := make(map[moq.Path]*moq.BroadcastConsumer)
	active := make(map[moq.Path]bool)
	// Each subscription reports its end once and at most want run at a
	// time, so this never blocks them.
	ended := make(chan moq.Path, want)
	var free []moq.Path
	for {
		for len(active) < want {
			free = free[:0]
			for p := range candidates {
				if !active[p] {
					free = append(free, p)
				}
			}
			if len(free) == 0 {
				break
			}
			slices.Sort(free)
			p := free[rng.IntN(len(free))]
			active[p] = true
			e.subWG.Add(1)
			go e.subscribe(candidates[p], ended, p)
		}
		select {
		case a := <-announces:
			if a.Broadcast != nil && !a.Path.HasPrefix(own) {
				candidates[a.Path] = a.Broadcast
			} else {
				delete(candidates, a.Path)
			}
		case p := <-ended:
			// One subscription per broadcast: it ended with its track.
			delete(active, p)
			delete(candidates, p)
		case <-ctx.Done():
			return
		}
	}
}

// subscribe reads the bench track of one broadcast until it ends or the
// run's subscriptions are stopped, measuring every group.
func (e *engine) subscribe(broadcast *moq.BroadcastConsumer, ended chan<- moq.Path, path moq.Path) {
	defer e.subWG.Done()
	defer func() { ended <- path }()
	ctx := e.subCtx
	track, err := broadcast.SubscribeTrack(moq.Track{Name: trackName})
	if err != nil {
		e.subscriptionFailed(broadcast, path, err)
		return
	}
	defer track.Close()
	if p, err := track.Produce(); err == nil {
		p.SetCacheAge(subscriberCacheAge)
		p.Close()
	}
	e.c.subsUp.Add(1)
	defer e.c.subsUp.Add(-1)

	tr := newSeqTracker()
	e.trackMu.Lock()
	e.trackers[tr] = struct{}{}
	e.trackMu.Unlock()
	var publisher atomic.Uint64
	var groups sync.WaitGroup
	defer func() {
		groups.Wait()
		e.trackMu.Lock()
		delete(e.trackers, tr)
		e.trackMu.Unlock()
		e.c.lostGroups.Add(tr.finish())
	}()

	for first := true; ; first = false {
		group, err := track.NextGroup(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.subscriptionFailed(broadcast, path, err)
			}
			return
		}
		if group == nil {
			return // the publisher finished the track
		}
		// The first group was already under way when the subscription
		// started: its latency measures the join, not the delivery.
		measure := !first
		groups.Go(func() { e.readGroup(ctx, group, tr, &publisher, measure) })
	}
}

// subscriptionFailed counts a failed subscription, unless its broadcast
// ended: with announce churn, a subscription may race the end of its
// broadcast, and that is not the relay's fault.
func (e *engine) subscriptionFailed(broadcast *moq.BroadcastConsumer, path moq.Path, err error) {
	ctx, cancel := context.WithTimeout(e.subCtx, endedGrace)
	defer cancel()
	if _ = broadcast.Closed(ctx); ctx.Err() == nil {
		e.log.Debug("subscription ended with its broadcast", "broadcast", path, "err", err)
		return
	}
	e.c.subErrors.Add(1)
	e.log.Debug("subscription failed", "broadcast", path, "err", err)
}

// readGroup reads one group to its end, measuring latency from the header
// in its first frame.
func (e *engine) readGroup(ctx context.Context, group *moq.GroupConsumer, tr *seqTracker, publisher *atomic.Uint64, measure bool) {
	seq := group.Sequence()
	for i := 0; ; i++ {
		data, err := group.ReadFrame(ctx)
		now := time.Now()
		if errors.Is(err, io.EOF) {
			if i == 0 {
				e.c.badGroups.Add(1)
				return
			}
			e.c.recvGroups.Add(1)
			e.c.lostGroups.Add(tr.received(seq, now))
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				e.c.lostGroups.Add(tr.failed(seq, now))
			}
			return
		}
		e.c.recvBytes.Add(int64(len(data)))
		e.c.recvFrames.Add(1)
		if i > 0 {
			continue
		}
		h, err := ParseHeader(data)
		if err == nil && h.Sequence != seq {
			err = fmt.Errorf("%w: sequence %d in group %d", ErrHeader, h.Sequence, seq)
		}
		if err == nil && !publisher.CompareAndSwap(0, h.Publisher) && publisher.Load() != h.Publisher {
			err = fmt.Errorf("%w: publisher %d in a track of publisher %d", ErrHeader, h.Publisher, publisher.Load())
		}
		if err != nil {
			e.c.badGroups.Add(1)
			e.log.Debug("bad group", "err", err)
			return
		}
		if measure {
			e.recordLatency(now.Sub(h.Sent))
		}
	}
}
