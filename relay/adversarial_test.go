package relay_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/session"
	"github.com/moqgo/moq/transport"
	"github.com/moqgo/moq/transport/qmux"
	quictransport "github.com/moqgo/moq/transport/quic"
)

// TestAdversarial plays hostile peers against a relay with short limits and
// checks, for each attack, that the relay refuses it as its limits document,
// that a well-behaved client keeps working during and after it, and that the
// relay's live heap and goroutines come back to where they were before it.
//
// Both ends run in this process, so every heap and goroutine figure counts
// the hostile peer and the well-behaved clients as well as the relay: the
// per-unit figures logged are upper bounds of the relay's share.
//
// Publish churn (broadcasts created and ended at the relay while a session
// stays connected) is TestPublishChurnRetainsNothing in leak_test.go.
func TestAdversarial(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"stream-flood", advStreamFlood},
		{"subscribe-amplification", advSubscribeAmplification},
		{"announce-flood", advAnnounceFlood},
		{"max-announced", advMaxAnnounced},
		{"oversize-announce", advOversizeAnnounce},
		{"silent-websocket", advSilentWebSocket},
		{"random-bytes", advRandomBytes},
		{"connect-churn", advConnectChurn},
		{"half-sent-upgrade", advHalfUpgrade},
		{"slow-subscriber", advSlowSubscriber},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// Scale of the attacks, scaled down from field numbers so that the suite
// runs in CI under the race detector on two cores.
const (
	advFloodStreams   = 1000 // streams of each direction; also the relay's MaxStreams
	advSubscribes     = 2000 // SUBSCRIBEs for made-up tracks
	advSubscribers    = 32   // of them in flight at once: twice MaxPendingSubscriptions
	advFloodBroadcast = 5000 // broadcasts announced at once
	advAnnouncedLimit = 100
	advSilentSockets  = 10
	advRandomQUIC     = 20 // sessions sending random bytes, by transport
	advRandomWS       = 20
	advRandomTCP      = 10
	advChurnRounds    = 3   // rounds of advChurnSessions sessions open at once,
	advChurnSessions  = 100 // half over QUIC, half over WebSocket
	advHalfUpgrades   = 50
	advSlowRate       = 25 * time.Millisecond // one 16 KiB group per tick: 5.2 Mbit/s
	advSlowFor        = 4 * time.Second
)

// Short relay limits where time matters.
const (
	advRequestTimeout   = 500 * time.Millisecond
	advHandshakeTimeout = time.Second
	advIdleTimeout      = time.Second
)

// Tolerances of the return to the baseline after an attack: the live heap
// within advHeapSlack above it and no more goroutines than before, within
// advSettleTimeout.
const (
	advHeapSlack     = 1 << 20
	advSettleTimeout = 15 * time.Second
	advPoll          = 20 * time.Millisecond
	advGoroutinePool = 5000
)

// advStreamFlood opens MaxStreams bidirectional and unidirectional streams,
// one byte each, and never finishes them: each is reset with the timeout
// code after the request timeout, the session stays up, and one more stream
// can only open once the relay freed one.
func advStreamFlood(t *testing.T) {
	limits := relay.Limits{MaxStreams: advFloodStreams}
	limits.RequestTimeout = advRequestTimeout
	r := startRelayWith(t, relay.Config{Limits: limits})
	ctx := advContext(t, 60*time.Second)
	base0 := advBaseline(t, ctx)
	conn, hangUp := advRawDial(t, ctx, r)
	base1 := advBaseline(t, ctx)

	during := advDuring(ctx, r, advHealthy)
	advFlood(t, ctx, conn, base1)
	advStopDuring(t, during)

	// The session is alive and answers a request.
	if err := conn.Context().Err(); err != nil {
		t.Fatalf("the flooding session ended: %v", context.Cause(conn.Context()))
	}
	if _, err := advRawSubscribe(ctx, conn, 1, "nobody", "x"); !advIsCode(err, moq.ErrNotFound) {
		t.Fatalf("SUBSCRIBE after the flood: %v, want a reset with code %d (not found)", err, lite.ErrorCode(moq.ErrNotFound))
	}
	advBackToBase(t, ctx, base1, "after the resets, with the flooding session open")
	hangUp()
	advHealthyNow(t, ctx, r)
	advBackToBase(t, ctx, base0, "after the flooding session closed")
}

// advFlood opens advFloodStreams streams of each direction on conn, writes
// the first byte of a request on each, and checks that the relay resets
// every one of them with the timeout code a request timeout later.
func advFlood(t *testing.T, ctx context.Context, conn transport.Session, base advSnapshot) {
	const n = advFloodStreams
	start := time.Now()
	bidi := make([]transport.Stream, 0, n+1)
	for range n {
		st, err := conn.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write([]byte{byte(lite.ControlSubscribe)}); err != nil {
			t.Fatal(err)
		}
		bidi = append(bidi, st)
	}
	uni := make([]transport.SendStream, 0, n)
	for range n {
		st, err := conn.OpenUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write([]byte{lite.DataGroup}); err != nil {
			t.Fatal(err)
		}
		uni = append(uni, st)
	}
	opened := time.Since(start)
	peak := advMeasure()
	t.Logf("flood: %d+%d streams opened in %v; live heap %+d bytes, %.0f bytes per stream; %+d goroutines",
		n, n, opened.Round(time.Millisecond), int64(peak.heap)-int64(base.heap),
		float64(int64(peak.heap)-int64(base.heap))/(2*n), peak.goroutines-base.goroutines)

	// MaxStreams bounds the flood: stream n+1 opens only once the relay has
	// reset one of the first n, a request timeout after it arrived.
	extra, err := conn.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blocked := time.Since(start)
	t.Logf("flood: stream %d opened after %v", n+1, blocked.Round(time.Millisecond))
	if blocked < advRequestTimeout {
		t.Errorf("bidirectional stream %d opened %v after the flood began: MaxStreams %d should hold it until the first reset (%v)",
			n+1, blocked, n, advRequestTimeout)
	}
	if _, err := extra.Write([]byte{byte(lite.ControlSubscribe)}); err != nil {
		t.Fatal(err)
	}
	bidi = append(bidi, extra)

	want := lite.ErrorCode(moq.ErrTimeout)
	buf := make([]byte, 16)
	for i, st := range bidi {
		_, err := st.Read(buf)
		if code, ok := advStreamCode(err); !ok || code != want {
			t.Fatalf("bidirectional stream %d ended with %v, want a reset with code %d (timeout)", i, err, want)
		}
		if i == 0 && time.Since(start) < advRequestTimeout {
			t.Errorf("the first stream was reset %v after it was opened, before the request timeout (%v)", time.Since(start), advRequestTimeout)
		}
		_ = st.Close() // consumes the STOP_SENDING, so that quic-go frees the stream
	}
	for i, st := range uni {
		select {
		case <-st.Context().Done():
		case <-ctx.Done():
			t.Fatalf("unidirectional stream %d: no STOP_SENDING", i)
		}
		_, err := st.Write([]byte{0})
		if code, ok := advStreamCode(err); !ok || code != want {
			t.Fatalf("unidirectional stream %d ended with %v, want STOP_SENDING with code %d (timeout)", i, err, want)
		}
	}
	done := time.Since(start)
	t.Logf("flood: every stream reset with code %d %v after the flood began", want, done.Round(time.Millisecond))
	if limit := blocked + advRequestTimeout + 3*time.Second; done > limit {
		t.Errorf("the last reset came %v after the flood began, want within %v", done, limit)
	}
}

// advSubscribeAmplification sends thousands of SUBSCRIBEs for made-up
// tracks of a real broadcast: the relay may ask the publisher for at most
// MaxPendingSubscriptions of them plus UnconfirmedRate a second, and
// refuses the others.
func advSubscribeAmplification(t *testing.T) {
	var limits relay.Limits
	limits.RequestTimeout = advRequestTimeout
	limits.MaxPendingSubscriptions = 16
	limits.UnconfirmedRate = 20
	r := startRelayWith(t, relay.Config{Limits: limits})
	ctx := advContext(t, 60*time.Second)

	// The publisher: a real track, and a dynamic handler that counts the
	// tracks it is asked for and has none of them.
	path := moq.NewPath("amp")
	origin := moq.NewOrigin()
	b, err := origin.CreateBroadcast(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	realTrack, err := b.CreateTrack(moq.Track{Name: "real"})
	if err != nil {
		t.Fatal(err)
	}
	defer realTrack.Close()
	if err := realTrack.WriteFrame([]byte("real")); err != nil {
		t.Fatal(err)
	}
	dyn := b.Dynamic()
	defer dyn.Close()
	var (
		mu        sync.Mutex
		requested = map[string]bool{} // made-up tracks the publisher was asked for
	)
	dyn.HandleRequests(func(track *moq.TrackProducer) {
		mu.Lock()
		requested[track.Info().Name] = true
		mu.Unlock()
		_ = track.Abort(moq.ErrNotFound)
		track.Close()
	})
	advPublish(t, ctx, r, path, origin)
	realSub := func(ctx context.Context, r *relay.Relay) error { return advSubscribeOnce(ctx, r, path, "real", "real") }
	if err := realSub(ctx, r); err != nil {
		t.Fatalf("before the attack: %v", err)
	}
	base0 := advBaseline(t, ctx)
	conn, hangUp := advRawDial(t, ctx, r)

	duringReal := advDuring(ctx, r, realSub)
	duringOther := advDuring(ctx, r, advHealthy)
	bounds := strconv.Itoa(int(lite.ErrorCode(moq.ErrBoundsExceeded)))
	notFound := strconv.Itoa(int(lite.ErrorCode(moq.ErrNotFound)))
	var (
		next    atomic.Int64
		answers = map[string]string{} // track → how its SUBSCRIBE ended
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range advSubscribers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > advSubscribes {
					return
				}
				name := "made-up-" + strconv.FormatInt(i, 10)
				_, err := advRawSubscribe(ctx, conn, uint64(i), string(path), name)
				answer := fmt.Sprint(err)
				if code, ok := advStreamCode(err); ok {
					answer = strconv.Itoa(int(code))
				}
				mu.Lock()
				answers[name] = answer
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	advStopDuring(t, duringReal)
	advStopDuring(t, duringOther)
	// Let the upstream requests still under way arrive.
	last, stable := -1, 0
	advEventually(ctx, func() bool {
		mu.Lock()
		n := len(requested)
		mu.Unlock()
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		return stable >= 5
	})
	mu.Lock()
	codes := map[string]int{}
	leaked := 0 // refused as over the limits, yet asked upstream
	for name, answer := range answers {
		codes[answer]++
		if answer == bounds && requested[name] {
			leaked++
		}
	}
	upstream := len(requested)
	mu.Unlock()
	bound := float64(limits.MaxPendingSubscriptions) + float64(limits.UnconfirmedRate)*elapsed.Seconds() + 4
	t.Logf("amplification: %d SUBSCRIBEs in %v, answered (by code) %v; %d reached the publisher (bound %.0f), %d of them refused downstream with code %s",
		advSubscribes, elapsed.Round(time.Millisecond), codes, upstream, bound, leaked, bounds)
	if float64(upstream) > bound {
		t.Errorf("the publisher was asked for %d made-up tracks, want at most MaxPendingSubscriptions + UnconfirmedRate × %.1f s + 4 = %.0f; %d of them were SUBSCRIBEs the relay refused (code %s) but still forwarded",
			upstream, elapsed.Seconds(), bound, leaked, bounds)
	}
	for answer, n := range codes {
		if answer != bounds && answer != notFound {
			t.Errorf("%d SUBSCRIBEs for made-up tracks ended with %s, want resets with code %s (bounds exceeded) or %s (not found)",
				n, answer, bounds, notFound)
		}
	}
	if err := realSub(ctx, r); err != nil {
		t.Errorf("after the attack: %v", err)
	}
	hangUp()
	advBackToBase(t, ctx, base0, "after the hostile subscriber left")
}

// advAnnounceFlood has one session announce many broadcasts at once, then
// end them, while an idle session that mirrors every announcement stays
// connected.
func advAnnounceFlood(t *testing.T) {
	const n = advFloodBroadcast
	r := startRelay(t)
	ctx := advContext(t, 60*time.Second)
	bystander := dial(t, ctx, r, "quic", session.Config{Consume: moq.NewOrigin()})
	prefix := moq.NewPath("flood")
	base := advBaseline(t, ctx)
	w := advWatch(t, ctx, r, prefix)

	origin := moq.NewOrigin()
	pub, err := advDial(ctx, r, "quic", session.Config{Publish: origin.Consume()})
	if err != nil {
		t.Fatal(err)
	}
	during := advDuring(ctx, r, advHealthy)
	start := time.Now()
	broadcasts := make([]*moq.BroadcastProducer, n)
	for i := range broadcasts {
		if broadcasts[i], err = origin.CreateBroadcast(prefix.Join(moq.NewPath(strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if !advEventually(ctx, func() bool { return w.active.Load() == n }) {
		t.Fatalf("the relay has %d of the %d broadcasts", w.active.Load(), n)
	}
	announced := time.Since(start)
	peak := advMeasure()
	t.Logf("announce flood: %d broadcasts announced in %v; live heap %+d bytes, %.0f bytes per broadcast",
		n, announced.Round(time.Millisecond), int64(peak.heap)-int64(base.heap), float64(int64(peak.heap)-int64(base.heap))/n)
	for _, b := range broadcasts {
		b.Close()
	}
	if !advEventually(ctx, func() bool { return w.ended.Load() == n }) {
		t.Fatalf("the relay saw %d of the %d broadcasts end", w.ended.Load(), n)
	}
	t.Logf("announce flood: all ended %v later", (time.Since(start) - announced).Round(time.Millisecond))
	advStopDuring(t, during)
	if err := bystander.Err(); err != nil {
		t.Errorf("the idle session ended: %v", err)
	}
	_ = pub.Close()
	advHealthyNow(t, ctx, r)
	w.stop()
	advBackToBase(t, ctx, base, "after the broadcasts ended and their publisher left")
}

// advMaxAnnounced announces one broadcast more than MaxAnnounced on the
// relay's announce stream: the relay resets that stream with the
// bounds-exceeded code, withdraws what it announced, and stays healthy.
func advMaxAnnounced(t *testing.T) {
	var limits relay.Limits
	limits.RequestTimeout = advRequestTimeout
	limits.MaxAnnounced = advAnnouncedLimit
	r := startRelayWith(t, relay.Config{Limits: limits})
	ctx := advContext(t, 30*time.Second)
	prefix := moq.NewPath("many")
	base := advBaseline(t, ctx)
	w := advWatch(t, ctx, r, prefix)
	conn, hangUp := advRawDial(t, ctx, r)
	st := advAcceptAnnounce(t, ctx, conn)

	during := advDuring(ctx, r, advHealthy)
	var b []byte
	for i := range advAnnouncedLimit + 1 {
		var err error
		b, err = lite.AppendMessage(b, &lite.Announce{Active: true, Suffix: prefix.Join(moq.NewPath(strconv.Itoa(i))).String()}, lite.Lite04)
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Write(b); err != nil {
		t.Fatal(err)
	}
	err := advDrain(st)
	if !advIsCode(err, moq.ErrBoundsExceeded) {
		t.Fatalf("the announce stream ended with %v, want a reset with code %d (bounds exceeded)", err, lite.ErrorCode(moq.ErrBoundsExceeded))
	}
	// The broadcasts of the reset stream are withdrawn.
	if !advEventually(ctx, func() bool { return w.ended.Load() == w.active.Load() }) {
		t.Fatalf("%d broadcasts announced at the relay, %d withdrawn", w.active.Load(), w.ended.Load())
	}
	t.Logf("max announced: %d broadcasts accepted, then the stream reset with code %d; all withdrawn",
		w.active.Load(), lite.ErrorCode(moq.ErrBoundsExceeded))
	if got := w.active.Load(); got != advAnnouncedLimit {
		t.Errorf("the relay announced %d of the broadcasts, want the first %d", got, advAnnouncedLimit)
	}
	advStopDuring(t, during)
	if _, err := advRawSubscribe(ctx, conn, 1, "nobody", "x"); !advIsCode(err, moq.ErrNotFound) {
		t.Fatalf("SUBSCRIBE after the reset: %v, want a reset with code %d (not found) from a live session", err, lite.ErrorCode(moq.ErrNotFound))
	}
	hangUp()
	advHealthyNow(t, ctx, r)
	w.stop()
	advBackToBase(t, ctx, base, "after the announcing session left")
}

// advOversizeAnnounce answers the relay's announce interest with an
// ANNOUNCE whose size prefix is 2^62-1: the relay resets the stream with the
// bounds-exceeded code, logs it, withdraws what the stream announced, and
// refuses later announcements on it (STOP_SENDING) rather than ignoring them.
func advOversizeAnnounce(t *testing.T) {
	logs := &advLogs{}
	var limits relay.Limits
	limits.RequestTimeout = advRequestTimeout
	r := startRelayWith(t, relay.Config{Limits: limits, Logger: slog.New(advLogHandler{logs: logs})})
	ctx := advContext(t, 30*time.Second)
	prefix := moq.NewPath("oversize")
	base := advBaseline(t, ctx)
	w := advWatch(t, ctx, r, prefix)
	conn, hangUp := advRawDial(t, ctx, r)
	st := advAcceptAnnounce(t, ctx, conn)

	announce := func(name string) []byte {
		b, err := lite.AppendMessage(nil, &lite.Announce{Active: true, Suffix: prefix.Join(moq.NewPath(name)).String()}, lite.Lite04)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := st.Write(announce("before")); err != nil {
		t.Fatal(err)
	}
	if !advEventually(ctx, func() bool { return w.active.Load() == 1 }) {
		t.Fatal("the broadcast announced before the oversized message did not reach the relay")
	}
	if _, err := st.Write(wire.AppendVarint(nil, wire.MaxVarint)); err != nil {
		t.Fatal(err)
	}
	err := advDrain(st)
	after := advMeasure()
	t.Logf("oversize: live heap %+d bytes after a size prefix of %d", int64(after.heap)-int64(base.heap), uint64(wire.MaxVarint))
	if !advIsCode(err, moq.ErrBoundsExceeded) {
		t.Fatalf("after the oversized ANNOUNCE the stream ended with %v, want a reset with code %d (bounds exceeded)", err, lite.ErrorCode(moq.ErrBoundsExceeded))
	}
	if !advEventually(ctx, func() bool { return w.ended.Load() == 1 }) {
		t.Fatal("the broadcast announced on the reset stream is still announced at the relay")
	}
	if !logs.has(slog.LevelWarn, moq.ErrBoundsExceeded) {
		t.Error("the relay logged no warning with a bounds-exceeded error")
	}
	// A later announcement on the stream is refused, not silently dropped:
	// the relay stopped reading it (STOP_SENDING with the same code).
	later := announce("after")
	var werr error
	advEventually(ctx, func() bool {
		_, werr = st.Write(later)
		return werr != nil
	})
	if !advIsCode(werr, moq.ErrBoundsExceeded) {
		t.Errorf("writing an ANNOUNCE after the reset: %v, want STOP_SENDING with code %d (bounds exceeded)", werr, lite.ErrorCode(moq.ErrBoundsExceeded))
	}
	if _, err := advRawSubscribe(ctx, conn, 1, "nobody", "x"); !advIsCode(err, moq.ErrNotFound) {
		t.Fatalf("SUBSCRIBE after the reset: %v, want a reset with code %d (not found) from a live session", err, lite.ErrorCode(moq.ErrNotFound))
	}
	t.Logf("oversize: stream reset with code %d, warning logged, announced broadcast withdrawn, later ANNOUNCE refused with %v; session alive",
		lite.ErrorCode(moq.ErrBoundsExceeded), werr)
	advHealthyNow(t, ctx, r)
	hangUp()
	w.stop()
	advBackToBase(t, ctx, base, "after the oversizing session left")
}

// advSilentWebSocket completes qmux-00.moq-lite-04 upgrades and then sends
// nothing, not even pongs to the relay's pings: the relay closes each
// connection after its idle timeout.
func advSilentWebSocket(t *testing.T) {
	limits := relay.Limits{HandshakeTimeout: advHandshakeTimeout, IdleTimeout: advIdleTimeout}
	r := startRelayWith(t, relay.Config{Limits: limits})
	ctx := advContext(t, 30*time.Second)
	base := advBaseline(t, ctx)

	during := advDuring(ctx, r, advHealthy)
	type silent struct {
		conn     net.Conn
		rd       *bufio.Reader
		upgraded time.Time
		closed   time.Duration // until the close frame, or the end of the connection
		ended    time.Duration // until the end of the connection
		pings    int
		err      error
	}
	conns := make([]silent, advSilentSockets)
	for i := range conns {
		conn, rd := advUpgrade(t, ctx, r, qmux.SubprotocolQMux00+"."+lite.ALPNLite04)
		conns[i] = silent{conn: conn, rd: rd, upgraded: time.Now()}
	}
	peak := advMeasure()
	t.Logf("silent WebSocket: %d upgraded; live heap %+d bytes, %.0f bytes per connection",
		len(conns), int64(peak.heap)-int64(base.heap), float64(int64(peak.heap)-int64(base.heap))/float64(len(conns)))
	// The relay's close gives an unresponsive peer a second to answer.
	const closeTimeout = time.Second
	var wg sync.WaitGroup
	for i := range conns {
		c := &conns[i]
		wg.Go(func() {
			_ = c.conn.SetReadDeadline(c.upgraded.Add(advIdleTimeout + closeTimeout + 3*time.Second))
			c.pings, c.err = advReadUntilClose(c.rd)
			c.closed = time.Since(c.upgraded)
			if c.err == nil {
				_, c.err = io.Copy(io.Discard, c.rd)
			}
			c.ended = time.Since(c.upgraded)
			_ = c.conn.Close()
		})
	}
	wg.Wait()
	var closed, ended []time.Duration
	for i, c := range conns {
		closed, ended = append(closed, c.closed), append(ended, c.ended)
		switch {
		case advIsTimeout(c.err):
			t.Errorf("connection %d: still open %v after the upgrade, want closed after the idle timeout (%v)", i, c.ended.Round(time.Millisecond), advIdleTimeout)
		case c.closed < advIdleTimeout*3/4 || c.closed > advIdleTimeout+time.Second:
			t.Errorf("connection %d closed %v after the upgrade, want at the idle timeout (%v)", i, c.closed.Round(time.Millisecond), advIdleTimeout)
		case c.ended > advIdleTimeout+closeTimeout+time.Second:
			t.Errorf("connection %d cut %v after the upgrade, want within the close timeout after the idle timeout", i, c.ended.Round(time.Millisecond))
		}
	}
	slices.Sort(closed)
	slices.Sort(ended)
	t.Logf("silent WebSocket: closed %v–%v after the upgrade (idle timeout %v), connection cut %v–%v; %d pings unanswered by the first",
		closed[0].Round(time.Millisecond), closed[len(closed)-1].Round(time.Millisecond), advIdleTimeout,
		ended[0].Round(time.Millisecond), ended[len(ended)-1].Round(time.Millisecond), conns[0].pings)
	advStopDuring(t, during)
	advHealthyNow(t, ctx, r)
	advBackToBase(t, ctx, base, "after the silent connections were closed")
}

// advReadUntilClose reads the frames a WebSocket server sends until its close
// frame, counting its pings; it fails if the connection ends first.
func advReadUntilClose(rd *bufio.Reader) (pings int, err error) {
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(rd, hdr[:]); err != nil {
			return pings, err
		}
		size := uint64(hdr[1] & 0x7f) // server frames are not masked
		switch size {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(rd, b[:]); err != nil {
				return pings, err
			}
			size = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(rd, b[:]); err != nil {
				return pings, err
			}
			size = binary.BigEndian.Uint64(b[:])
		}
		if _, err := io.CopyN(io.Discard, rd, int64(size)); err != nil {
			return pings, err
		}
		switch hdr[0] & 0x0f {
		case 0x8:
			return pings, nil
		case 0x9:
			pings++
		}
	}
}

func advIsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// advRandomBytes sends random bytes: on QUIC streams of a lite-04 session,
// as a WebSocket message of a qmux-00 session, and as an HTTP request. Each
// is refused: the relay resets the stream or closes the session or the
// connection.
func advRandomBytes(t *testing.T) {
	limits := relay.Limits{HandshakeTimeout: advHandshakeTimeout}
	limits.RequestTimeout = advRequestTimeout
	r := startRelayWith(t, relay.Config{Limits: limits})
	ctx := advContext(t, 60*time.Second)
	base := advBaseline(t, ctx)
	during := advDuring(ctx, r, advHealthy)
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() []byte {
		b := make([]byte, 64)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	outcomes := map[string]int{}

	for i := range advRandomQUIC {
		conn, hangUp := advRawDial(t, ctx, r)
		bidi, err := conn.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		uni, err := conn.OpenUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Half the sessions start their streams with a valid type, so that
		// the random bytes reach the message decoders.
		prefixes := [][]byte{nil, nil}
		if i%2 == 1 {
			prefixes = [][]byte{{byte([]lite.ControlType{lite.ControlAnnounce, lite.ControlSubscribe, lite.ControlFetch}[i/2%3])}, {lite.DataGroup}}
		}
		for j, st := range []transport.SendStream{bidi, uni} {
			_, _ = st.Write(append(prefixes[j], random()...))
			_ = st.Close()
		}
		// The bidirectional stream is reset, or the session closed.
		err = advDrain(bidi)
		var se *transport.SessionError
		switch code, ok := advStreamCode(err); {
		case ok:
			outcomes["quic: stream reset "+strconv.Itoa(int(code))]++
		case errors.As(err, &se) && se.Remote && se.Code != 0:
			outcomes["quic: session closed "+strconv.Itoa(int(se.Code))]++
		default:
			t.Errorf("QUIC session %d: random bytes on a bidirectional stream ended with %v, want a reset or a session close", i, err)
		}
		// The unidirectional stream is stopped, or the session closed.
		select {
		case <-uni.Context().Done():
		case <-conn.Context().Done():
		case <-ctx.Done():
			t.Fatalf("QUIC session %d: random bytes on a unidirectional stream neither stopped nor closed", i)
		}
		hangUp()
	}

	for i := range advRandomWS {
		ws, _, err := websocket.Dial(ctx, "ws://127.0.0.1:"+strconv.Itoa(r.Port())+"/",
			&websocket.DialOptions{Subprotocols: []string{qmux.SubprotocolQMux00 + "." + lite.ALPNLite04}})
		if err != nil {
			t.Fatal(err)
		}
		ws.SetReadLimit(1 << 20)
		msg := random() // in place of the QMux transport parameters
		if i%2 == 1 {
			// Random bytes on a moq stream of a valid QMux session.
			send(t, ctx, ws, transportParams(t))
			if msg, err = qmux.AppendFrame(nil, &qmux.Frame{Kind: qmux.KindStream, StreamID: 0, Data: random(), Fin: true}, qmux.QMux00); err != nil {
				t.Fatal(err)
			}
		}
		send(t, ctx, ws, msg)
		outcome, err := advWebSocketRefusal(ctx, ws)
		if err != nil {
			t.Errorf("WebSocket session %d: %v", i, err)
		}
		outcomes["websocket: "+outcome]++
		_ = ws.CloseNow()
	}

	for i := range advRandomTCP {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(r.Port()))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(append(random(), "\r\n\r\n"...))
		_ = conn.SetReadDeadline(time.Now().Add(advHandshakeTimeout + 2*time.Second))
		reply, err := io.ReadAll(conn)
		_ = conn.Close()
		if advIsTimeout(err) {
			t.Errorf("HTTP connection %d: still open after the handshake timeout", i)
			continue
		}
		status, _, _ := strings.Cut(string(reply), "\r\n")
		if !strings.HasPrefix(status, "HTTP/1.1 4") && status != "" {
			t.Errorf("HTTP connection %d: random bytes answered %q, want a 4xx or nothing", i, status)
		}
		outcomes["http: "+status+" and closed"]++
	}
	t.Logf("random bytes: %v", outcomes)
	advStopDuring(t, during)
	advHealthyNow(t, ctx, r)
	advBackToBase(t, ctx, base, "after the random sessions")
}

// advConnectChurn opens and closes sessions over QUIC and WebSocket in
// rounds.
func advConnectChurn(t *testing.T) {
	r := startRelay(t)
	ctx := advContext(t, 60*time.Second)
	base := advBaseline(t, ctx)
	during := advDuring(ctx, r, advHealthy)
	start := time.Now()
	for round := range advChurnRounds {
		sessions := make([]*session.Session, advChurnSessions)
		var wg sync.WaitGroup
		errs := make(chan error, len(sessions))
		sem := make(chan struct{}, 8)
		for i := range sessions {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				tr := "quic"
				if i%2 == 1 {
					tr = "websocket"
				}
				var err error
				if sessions[i], err = advDial(ctx, r, tr, session.Config{}); err != nil {
					errs <- fmt.Errorf("%s: %w", tr, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if round == 0 {
			peak := advMeasure()
			t.Logf("churn: %d sessions open; live heap %+d bytes, %.0f bytes per session; %+d goroutines",
				len(sessions), int64(peak.heap)-int64(base.heap), float64(int64(peak.heap)-int64(base.heap))/float64(len(sessions)),
				peak.goroutines-base.goroutines)
		}
		closeAll(sessions)
	}
	t.Logf("churn: %d sessions connected and left in %v", advChurnRounds*advChurnSessions, time.Since(start).Round(time.Millisecond))
	advStopDuring(t, during)
	advHealthyNow(t, ctx, r)
	advBackToBase(t, ctx, base, "after the churn")
}

// advHalfUpgrade sends the first part of a WebSocket upgrade request and
// nothing more: the relay closes each connection at its handshake timeout.
func advHalfUpgrade(t *testing.T) {
	limits := relay.Limits{HandshakeTimeout: advHandshakeTimeout}
	r := startRelayWith(t, relay.Config{Limits: limits})
	ctx := advContext(t, 30*time.Second)
	base := advBaseline(t, ctx)
	during := advDuring(ctx, r, advHealthy)
	partial := "GET / HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(r.Port()) +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Proto"
	conns := make([]net.Conn, advHalfUpgrades)
	start := time.Now()
	for i := range conns {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(r.Port()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, partial); err != nil {
			t.Fatal(err)
		}
		conns[i] = conn
	}
	peak := advMeasure()
	t.Logf("half-sent upgrades: %d connections; live heap %+d bytes, %.0f bytes per connection; %+d goroutines",
		len(conns), int64(peak.heap)-int64(base.heap), float64(int64(peak.heap)-int64(base.heap))/float64(len(conns)),
		peak.goroutines-base.goroutines)
	// Read in order: the first close is timed as it happens, the others are
	// bounded by the read deadline.
	const slack = 2 * time.Second
	var first, last time.Duration
	for i, conn := range conns {
		_ = conn.SetReadDeadline(start.Add(advHandshakeTimeout + slack))
		_, err := io.Copy(io.Discard, conn)
		last = time.Since(start)
		if i == 0 {
			first = last
		}
		if advIsTimeout(err) {
			t.Errorf("connection %d still open %v after the first partial request, want closed at the handshake timeout (%v)", i, last, advHandshakeTimeout)
		}
	}
	if first < advHandshakeTimeout {
		t.Errorf("the first partial request was closed after %v, before the handshake timeout (%v)", first, advHandshakeTimeout)
	}
	t.Logf("half-sent upgrades: closed %v–%v after the first was sent (handshake timeout %v)",
		first.Round(time.Millisecond), last.Round(time.Millisecond), advHandshakeTimeout)
	advStopDuring(t, during)
	advHealthyNow(t, ctx, r)
	advBackToBase(t, ctx, base, "after the half-sent upgrades")
}

// advSlowSubscriber subscribes to a live track at a few Mbit/s and never
// reads its groups: another subscriber of the same track keeps receiving
// every group on time.
func advSlowSubscriber(t *testing.T) {
	r := startRelayWith(t, relay.Config{Cache: relay.CacheLimits{MaxAge: 2 * time.Second, TrackBytes: 4 << 20}})
	ctx := advContext(t, 60*time.Second)
	base := advBaseline(t, ctx)

	path := moq.NewPath("slow")
	origin := moq.NewOrigin()
	b, err := origin.CreateBroadcast(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	track, err := b.CreateTrack(moq.Track{Name: "data"})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	pub := advPublish(t, ctx, r, path, origin)

	// The slow subscriber: SUBSCRIBE, then it never accepts a group stream.
	conn, hangUp := advRawDial(t, ctx, r)
	// The well-behaved one.
	good, err := advDial(ctx, r, "quic", session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()

	during := advDuring(ctx, r, advHealthy)
	stop := make(chan struct{})
	written := make(chan int, 1)
	go func() {
		tick := time.NewTicker(advSlowRate)
		defer tick.Stop()
		n := 0
		defer func() { written <- n }()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			frame := make([]byte, 16<<10)
			binary.BigEndian.PutUint64(frame, uint64(time.Now().UnixNano()))
			if track.WriteFrame(frame) != nil {
				return
			}
			n++
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	// The first group confirms the track, so both subscriptions are answered.
	if _, err := advRawSubscribe(ctx, conn, 1, string(path), "data"); err != nil {
		t.Fatalf("slow subscriber: %v", err)
	}
	sub, err := good.Subscribe(ctx, path, "data", session.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	var received int
	var worst time.Duration
	var first uint64
	deadline := time.Now().Add(advSlowFor)
	readCtx, cancelRead := context.WithDeadline(ctx, deadline.Add(5*time.Second))
	defer cancelRead()
	for time.Now().Before(deadline) {
		g, err := sub.Track().NextGroup(readCtx)
		if err != nil {
			t.Fatalf("the other subscriber, after %d groups: %v", received, err)
		}
		frame, err := g.ReadFrame(readCtx)
		if err != nil {
			t.Fatalf("group %d: %v", g.Sequence(), err)
		}
		if received == 0 {
			first = g.Sequence()
		}
		lag := time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(frame))))
		worst = max(worst, lag)
		received++
	}
	close(stop)
	n := <-written
	peak := advMeasure()
	expected := n - int(first)
	// The slow subscriber was held back: flow control stopped the relay.
	stalled := conn.(transport.Stats).ConnectionStats().BytesReceived
	t.Logf("slow subscriber: its connection received %d bytes of the %d written", stalled, n*16<<10)
	if stalled > uint64(n*16<<10)*3/4 {
		t.Errorf("the subscriber that never reads received %d of %d bytes: it was not held back", stalled, n*16<<10)
	}
	t.Logf("slow subscriber: %d groups of 16 KiB written (%.1f Mbit/s), the other subscriber got %d of the %d after its first, worst lag %v; live heap %+d bytes",
		n, float64(16<<10*8)/advSlowRate.Seconds()/1e6, received, expected, worst.Round(time.Millisecond), int64(peak.heap)-int64(base.heap))
	if received < expected*9/10 {
		t.Errorf("the other subscriber got %d of %d groups", received, expected)
	}
	if worst > time.Second {
		t.Errorf("the other subscriber lagged up to %v behind the publisher", worst)
	}
	advStopDuring(t, during)
	sub.Close()
	_ = good.Close()
	_ = pub.Close()
	hangUp()
	track.Close()
	b.Close()
	advHealthyNow(t, ctx, r)
	advBackToBase(t, ctx, base, "after the slow subscriber and the publisher left")
}

// --- helpers ---

func advContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// advEventually polls cond every advPoll until it holds (true) or ctx is
// done (false).
func advEventually(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(advPoll)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// advSnapshot is the process's live heap (HeapAlloc after a collection) and
// goroutine count.
type advSnapshot struct {
	heap       uint64
	goroutines int
}

func advMeasure() advSnapshot {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return advSnapshot{heap: m.HeapAlloc, goroutines: runtime.NumGoroutine()}
}

// advBaseline waits until the goroutine count stayed the same for five polls
// and measures. The runtime never frees a goroutine's descriptor, it reuses
// it: so that an attack's peak of goroutines does not read as retained heap,
// advBaseline first runs advGoroutinePool goroutines at once.
func advBaseline(t *testing.T, ctx context.Context) advSnapshot {
	t.Helper()
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range advGoroutinePool {
		wg.Go(func() { <-release })
	}
	close(release)
	wg.Wait()
	last, stable := -1, 0
	advEventually(ctx, func() bool {
		n := runtime.NumGoroutine()
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		return stable >= 5
	})
	return advMeasure()
}

// advBackToBase waits until the live heap is within advHeapSlack of base's
// and the goroutines are no more than base's, and fails the test if that
// takes longer than advSettleTimeout.
func advBackToBase(t *testing.T, ctx context.Context, base advSnapshot, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, advSettleTimeout)
	defer cancel()
	start := time.Now()
	var now advSnapshot
	ok := advEventually(ctx, func() bool {
		now = advMeasure()
		return now.heap <= base.heap+advHeapSlack && now.goroutines <= base.goroutines
	})
	t.Logf("%s: live heap %d → %d bytes (%+d), goroutines %d → %d, after %v",
		when, base.heap, now.heap, int64(now.heap)-int64(base.heap), base.goroutines, now.goroutines, time.Since(start).Round(time.Millisecond))
	if !ok {
		buf := make([]byte, 1<<20)
		t.Errorf("%s: not back to the baseline within %v (heap slack %d bytes, no extra goroutine); goroutines:\n%s",
			when, advSettleTimeout, advHeapSlack, buf[:runtime.Stack(buf, true)])
	}
}

// advDial dials the relay like dial, returning the error.
func advDial(ctx context.Context, r *relay.Relay, transport string, cfg session.Config) (*session.Session, error) {
	cfg.Fingerprint = r.Fingerprint()
	cfg.Logger = testLogger()
	return session.Dial(ctx, relayURL(r, transport), &cfg)
}

// advPublish dials a session publishing origin and waits until the relay
// announces path.
func advPublish(t *testing.T, ctx context.Context, r *relay.Relay, path moq.Path, origin *moq.OriginProducer) *session.Session {
	t.Helper()
	view, err := r.Origin().Consume().ConsumeOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	anns := view.Announcements()
	defer anns.Close()
	pub := dial(t, ctx, r, "quic", session.Config{Publish: origin.Consume()})
	if _, err := anns.Next(ctx); err != nil {
		t.Fatalf("%s not announced at the relay: %v", path, err)
	}
	return pub
}

var advCheckSeq atomic.Int64

// advHealthy is the well-behaved client: one session publishes a track,
// another subscribes to it through the relay and reads two groups. Each
// runs over QUIC or WebSocket, in turn.
func advHealthy(ctx context.Context, r *relay.Relay) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	n := advCheckSeq.Add(1)
	transports := [2]string{"quic", "websocket"}
	pubOver, subOver := transports[n%2], transports[n/2%2]
	path := moq.NewPath("healthy", strconv.FormatInt(n, 10))
	origin := moq.NewOrigin()
	b, err := origin.CreateBroadcast(path)
	if err != nil {
		return err
	}
	defer b.Close()
	track, err := b.CreateTrack(moq.Track{Name: "t"})
	if err != nil {
		return err
	}
	defer track.Close()
	if err := track.WriteFrame([]byte("0")); err != nil {
		return err
	}
	view, err := r.Origin().Consume().ConsumeOnly(path)
	if err != nil {
		return err
	}
	anns := view.Announcements()
	defer anns.Close()
	pub, err := advDial(ctx, r, pubOver, session.Config{Publish: origin.Consume()})
	if err != nil {
		return fmt.Errorf("publisher over %s: %w", pubOver, err)
	}
	defer pub.Close()
	if _, err := anns.Next(ctx); err != nil {
		return fmt.Errorf("announcement: %w", err)
	}
	sub, err := advDial(ctx, r, subOver, session.Config{})
	if err != nil {
		return fmt.Errorf("subscriber over %s: %w", subOver, err)
	}
	defer sub.Close()
	s, err := sub.Subscribe(ctx, path, "t", session.SubscribeOptions{})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer s.Close()
	for want := range 2 {
		g, err := s.Track().NextGroup(ctx)
		if err != nil {
			return fmt.Errorf("group %d: %w", want, err)
		}
		frame, err := g.ReadFrame(ctx)
		if err != nil || string(frame) != strconv.Itoa(want) {
			return fmt.Errorf("group %d: frame %q, %v", want, frame, err)
		}
		if want == 0 {
			if err := track.WriteFrame([]byte("1")); err != nil {
				return err
			}
		}
	}
	return nil
}

// advSubscribeOnce subscribes to a track through the relay from a new
// session and reads one group, which must hold want.
func advSubscribeOnce(ctx context.Context, r *relay.Relay, path moq.Path, track, want string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sess, err := advDial(ctx, r, "quic", session.Config{})
	if err != nil {
		return err
	}
	defer sess.Close()
	s, err := sess.Subscribe(ctx, path, track, session.SubscribeOptions{})
	if err != nil {
		return fmt.Errorf("subscribe to %s/%s: %w", path, track, err)
	}
	defer s.Close()
	g, err := s.Track().NextGroup(ctx)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", path, track, err)
	}
	frame, err := g.ReadFrame(ctx)
	if err != nil || string(frame) != want {
		return fmt.Errorf("%s/%s: frame %q, %v", path, track, frame, err)
	}
	return nil
}

// advHealthyNow runs the well-behaved client once.
func advHealthyNow(t *testing.T, ctx context.Context, r *relay.Relay) {
	t.Helper()
	if err := advHealthy(ctx, r); err != nil {
		t.Fatalf("well-behaved client after the attack: %v", err)
	}
}

// advChecks runs a well-behaved client check over and over.
type advChecks struct {
	stopping atomic.Bool
	done     chan struct{}
	passed   int
	err      error
}

// advDuring runs check over and over until advStopDuring: at least once,
// and a check started before the stop runs to its end.
func advDuring(ctx context.Context, r *relay.Relay, check func(context.Context, *relay.Relay) error) *advChecks {
	c := &advChecks{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			if c.err = check(ctx, r); c.err != nil {
				return
			}
			c.passed++
			if c.stopping.Load() {
				return
			}
		}
	}()
	return c
}

// advStopDuring stops the checks and fails the test if one failed.
func advStopDuring(t *testing.T, c *advChecks) {
	t.Helper()
	c.stopping.Store(true)
	<-c.done
	if c.err != nil {
		t.Errorf("well-behaved client during the attack, after %d passed checks: %v", c.passed, c.err)
		return
	}
	t.Logf("well-behaved client: %d checks passed during the attack", c.passed)
}

// advRawDial opens a raw lite-04 QUIC connection to the relay, closed when
// ctx ends (which unblocks its reads) or the test ends. hangUp closes it and
// drops every reference the helpers hold: a closed quic-go connection keeps
// its streams, which would count as the relay's heap.
func advRawDial(t *testing.T, ctx context.Context, r *relay.Relay) (conn transport.Session, hangUp func()) {
	t.Helper()
	trust, err := selfsign.TrustFingerprint(r.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	trust.NextProtos = []string{lite.ALPNLite04}
	conn, err = quictransport.Dial(ctx, "127.0.0.1:"+strconv.Itoa(r.Port()), trust, quictransport.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	held := conn
	hangUp = func() {
		mu.Lock()
		c := held
		held = nil
		mu.Unlock()
		if c != nil {
			_ = c.CloseWithError(0, "")
		}
	}
	stop := context.AfterFunc(ctx, hangUp)
	t.Cleanup(func() {
		stop()
		hangUp()
	})
	return conn, hangUp
}

// advRawSubscribe sends a SUBSCRIBE on a new stream and returns the stream
// after SUBSCRIBE_OK, or the error that ended it first.
func advRawSubscribe(ctx context.Context, conn transport.Session, id uint64, broadcast, track string) (_ transport.Stream, err error) {
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			// Abandon both sides, or quic-go keeps the stream.
			st.CancelWrite(0)
			st.CancelRead(0)
		}
	}()
	b, err := lite.AppendMessage(wire.AppendVarint(nil, uint64(lite.ControlSubscribe)),
		&lite.Subscribe{ID: id, Broadcast: broadcast, Track: track}, lite.Lite04)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write(b); err != nil {
		return nil, err
	}
	ok, _, err := lite.ReadSubscribeResponse(wire.NewReader(st), lite.Lite04, 1<<20)
	if err != nil {
		return nil, err
	}
	if ok == nil {
		return nil, errors.New("SUBSCRIBE_DROP before SUBSCRIBE_OK")
	}
	return st, nil
}

// advAcceptAnnounce accepts the announce stream the relay opens to every
// session and reads its ANNOUNCE_INTEREST, after which the relay sends
// nothing on it.
func advAcceptAnnounce(t *testing.T, ctx context.Context, conn transport.Session) transport.Stream {
	t.Helper()
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rd := wire.NewReader(st)
	kind, err := lite.ReadControlType(rd, lite.Lite04)
	if err != nil || kind != lite.ControlAnnounce {
		t.Fatalf("the relay opened a %v stream (%v), want an announce stream", kind, err)
	}
	var interest lite.AnnounceInterest
	if err := lite.ReadMessage(rd, &interest, lite.Lite04, 1<<20); err != nil {
		t.Fatal(err)
	}
	return st
}

// advDrain reads r until it fails and returns the error (nil at io.EOF).
func advDrain(r io.Reader) error {
	buf := make([]byte, 512)
	for {
		if _, err := r.Read(buf); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// advStreamCode returns the code of a stream reset or STOP_SENDING the
// relay sent.
func advStreamCode(err error) (uint32, bool) {
	var se *transport.StreamError
	if errors.As(err, &se) && se.Remote {
		return se.Code, true
	}
	return 0, false
}

// advIsCode reports whether err is a stream reset by the relay with the
// code of want.
func advIsCode(err, want error) bool {
	code, ok := advStreamCode(err)
	return ok && code == lite.ErrorCode(want)
}

// advWebSocketRefusal reads a QMux session until the relay refuses stream 0
// (RESET_STREAM or STOP_SENDING) or ends the session, and describes how.
func advWebSocketRefusal(ctx context.Context, ws *websocket.Conn) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return "", errors.New("neither refused nor closed")
			}
			return "closed", nil
		}
		f, _, err := qmux.ParseFrame(msg, qmux.QMux00)
		if err != nil {
			return "", fmt.Errorf("the relay sent a bad frame: %w", err)
		}
		switch {
		case (f.Kind == qmux.KindResetStream || f.Kind == qmux.KindStopSending) && f.StreamID == 0:
			return fmt.Sprintf("stream reset %d", f.Code), nil
		case f.Kind == qmux.KindConnectionClose || f.Kind == qmux.KindApplicationClose:
			return fmt.Sprintf("%v %d", f.Kind, f.Code), nil
		}
	}
}

// advUpgrade completes a WebSocket upgrade for subprotocol over a raw TCP
// connection, which then answers nothing (not even pings).
func advUpgrade(t *testing.T, ctx context.Context, r *relay.Relay, subprotocol string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(r.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	req := "GET / HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(r.Port()) + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + subprotocol + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != subprotocol {
		t.Fatalf("upgrade answered %s with subprotocol %q", resp.Status, resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	return conn, rd
}

// advWatcher counts the broadcasts the relay announces and withdraws under
// a prefix, until stop.
type advWatcher struct {
	active, ended atomic.Int64
	stop          func()
}

func advWatch(t *testing.T, ctx context.Context, r *relay.Relay, prefix moq.Path) *advWatcher {
	t.Helper()
	view, err := r.Origin().Consume().ConsumeOnly(prefix)
	if err != nil {
		t.Fatal(err)
	}
	anns := view.Announcements()
	done := make(chan struct{})
	w := &advWatcher{stop: sync.OnceFunc(func() {
		anns.Close()
		<-done
	})}
	go func() {
		defer close(done)
		for {
			a, err := anns.Next(ctx)
			if err != nil {
				return
			}
			if a.Broadcast != nil {
				w.active.Add(1)
			} else {
				w.ended.Add(1)
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// advLogs keeps the relay's warnings and errors.
type advLogs struct {
	mu      sync.Mutex
	records []slog.Record
}

// has reports whether a record at level or above carries an error matching
// target.
func (l *advLogs) has(level slog.Level, target error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.records, func(r slog.Record) bool {
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && errors.Is(err, target) {
				found = true
			}
			return !found
		})
		return r.Level >= level && found
	})
}

type advLogHandler struct {
	logs  *advLogs
	attrs []slog.Attr
}

func (h advLogHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}

func (h advLogHandler) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	h.logs.mu.Lock()
	h.logs.records = append(h.logs.records, r)
	h.logs.mu.Unlock()
	return nil
}

func (h advLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return advLogHandler{logs: h.logs, attrs: append(slices.Clip(h.attrs), attrs...)}
}

func (h advLogHandler) WithGroup(string) slog.Handler { return h }
