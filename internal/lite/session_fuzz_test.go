package lite

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/vectortest"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// FuzzSession runs a real Session over an in-memory transport whose peer
// side is the fuzz input, then shuts it down and checks what it wrote.
//
// Input: a flags byte (see the flag* constants; its low two bits choose the
// version), then records until the input ends. A record is a header byte h
// (kind h&3, end (h>>2)&3, code h>>4), for recReply a target byte (the
// control type, or ClientSetupType, of the engine's streams it answers), a
// QUIC varint length and that many bytes.
func FuzzSession(f *testing.F) {
	for _, in := range sessionSeeds(f) {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		runFuzzSession(t, in[0], parseRecords(in[1:]))
	})
}

// Version modes, in the flags byte's low two bits.
const (
	modeSetupServer = iota // SETUP as the server: the first peer stream carries CLIENT_SETUP
	modeSetupClient        // SETUP as the client: a recReply for ClientSetupType answers it
	modeLite03
	modeLite04
)

// Flags of the first input byte, above the version mode.
const (
	flagRelay     = 1 << 2 // Publish is the Consume origin, with a node id, as in a relay
	flagTrack     = 1 << 3 // consume track "video" of the peer's broadcast fuzzPeer
	flagSubscribe = 1 << 4 // Session.Subscribe to the peer's track "audio"
	flagFetch     = 1 << 5 // Session.Fetch a group of the peer (lite-03+)
	flagProbe     = 1 << 6 // ask for the peer's estimates (lite-03+)
)

// Record kinds.
const (
	recBidi  = iota // a bidirectional stream the peer opens
	recUni          // a unidirectional (group) stream the peer opens
	recReply        // what the peer answers on a bidirectional stream the engine opens
	recClose        // the peer closes the session with code and reason once the rest is read
)

// How a scripted read side ends after its bytes.
const (
	endFin     = iota
	endReset   // reset by the peer with the record's code
	endHold    // open until the engine cancels it or the session ends
	endTrickle // FIN, the bytes delivered one per Read
)

const (
	maxRecords  = 32
	iterTimeout = 10 * time.Second // a session that takes longer is hung
	// fuzzSettle is how long the transport must stay quiet before the harness
	// moves on, so that the engine gets to act on what it read.
	fuzzSettle = time.Millisecond
)

// Paths and node ids of the fixture.
const (
	fuzzLocal  = "room/alice" // the broadcast Publish holds
	fuzzPeer   = "room/bob"   // the peer's broadcast the harness consumes
	fuzzHop    = 3            // the local broadcast's hop
	fuzzNodeID = 9            // NodeID in relay mode
)

type fuzzRecord struct {
	kind, end int
	code      uint32
	target    ControlType
	data      []byte
}

func parseRecords(in []byte) []fuzzRecord {
	var out []fuzzRecord
	for len(in) > 0 && len(out) < maxRecords {
		h := in[0]
		in = in[1:]
		r := fuzzRecord{kind: int(h & 3), end: int(h>>2) & 3, code: uint32(h >> 4)}
		if r.kind == recReply {
			if len(in) == 0 {
				break
			}
			r.target = ControlType(in[0])
			in = in[1:]
		}
		n, l, err := wire.ParseVarint(in)
		if err != nil {
			n, l = 0, len(in) // a cut-off length: no data
		}
		in = in[l:]
		n = min(n, uint64(len(in)))
		r.data, in = in[:n], in[n:]
		out = append(out, r)
	}
	return out
}

// fixtureTracks are the tracks of the local broadcast: frame f of group g
// of track T holds fixtureFrame(T, g, f).
var fixtureTracks = []struct {
	name           string
	groups, frames int
	finished       bool
}{
	{"video", 4, 2, false},
	{"audio", 2, 1, true},
}

func fixtureFrame(track string, group uint64, frame int) string {
	return fmt.Sprintf("%s %d.%d", track, group, frame)
}

// fixtureGroup returns the frames of a cached group, false for none.
func fixtureGroup(track string, group uint64) ([]string, bool) {
	for _, ft := range fixtureTracks {
		if ft.name == track && group < uint64(ft.groups) {
			var out []string
			for f := range ft.frames {
				out = append(out, fixtureFrame(track, group, f))
			}
			return out, true
		}
	}
	return nil, false
}

// publishFixture creates the local broadcast in o; close releases it.
func publishFixture(tb testing.TB, o *moq.OriginProducer) (close func()) {
	bp, err := o.CreateBroadcast(fuzzLocal)
	if err != nil {
		tb.Fatal(err)
	}
	bp.SetHops([]uint64{fuzzHop})
	var tracks []*moq.TrackProducer
	for _, ft := range fixtureTracks {
		tp, err := bp.CreateTrack(moq.Track{Name: ft.name, Priority: 1})
		if err != nil {
			tb.Fatal(err)
		}
		tracks = append(tracks, tp)
		for g := range ft.groups {
			gp, err := tp.AppendGroup()
			if err != nil {
				tb.Fatal(err)
			}
			for fr := range ft.frames {
				if err := gp.WriteFrame([]byte(fixtureFrame(ft.name, uint64(g), fr))); err != nil {
					tb.Fatal(err)
				}
			}
			_ = gp.Finish()
			gp.Close()
		}
		if ft.finished {
			_ = tp.Finish()
		}
	}
	return func() {
		for _, tp := range tracks {
			tp.Close()
		}
		bp.Close()
	}
}

func runFuzzSession(t *testing.T, flags byte, recs []fuzzRecord) {
	deadline := time.NewTimer(iterTimeout)
	defer deadline.Stop()
	c := newFakeConn(recs)
	defer c.CloseWithError(0, "") // unblocks everything if the test fails midway

	consume := moq.NewOrigin()
	cfg := engine.Config{Consume: consume, Logger: slog.New(slog.DiscardHandler)}
	relay := flags&flagRelay != 0
	var unpublish func()
	if relay {
		unpublish = publishFixture(t, consume)
		cfg.Publish, cfg.NodeID = consume.Consume(), fuzzNodeID
	} else {
		pub := moq.NewOrigin()
		unpublish = publishFixture(t, pub)
		cfg.Publish = pub.Consume()
	}
	defer unpublish()

	var v Version
	var setup *SetupStream
	switch int(flags & 3) {
	case modeLite03:
		v = Lite03
	case modeLite04:
		v = Lite04
	default:
		var err error
		setup, err = fuzzSetup(t, c, flags&3 == modeSetupClient, deadline.C)
		if err != nil {
			if !isModelError(err) {
				t.Fatalf("SETUP failed with %v, which wraps no model error", err)
			}
			_ = c.CloseWithError(ErrorCode(err), err.Error())
			c.check(t, 0, relay)
			return
		}
		v = Version(setup.Version)
	}
	c.startSession()
	s := New(c, v, cfg, setup)

	// What the harness asks of the peer, on its own goroutines.
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	var actions sync.WaitGroup
	expect := 1 // the announce stream of runAnnounced
	if flags&flagTrack != 0 {
		expect++
		b, release := s.ConsumeBroadcast(fuzzPeer)
		defer release()
		if tc, err := b.SubscribeTrack(moq.Track{Name: "video", Priority: 2}); err == nil {
			defer tc.Close()
		}
	}
	if flags&flagSubscribe != 0 {
		expect++
		opts := engine.SubscribeOptions{Priority: 1}
		if v >= Lite03 {
			start := uint64(1)
			opts.Ordered, opts.Start, opts.MaxLatency = true, &start, time.Second
		}
		actions.Go(func() {
			sub, err := s.Subscribe(actx, fuzzPeer, "audio", opts)
			if err != nil {
				if !c.modelError(err) {
					t.Errorf("Subscribe: %v wraps no model error", err)
				}
				return
			}
			<-actx.Done()
			sub.Close()
		})
	}
	if flags&flagFetch != 0 && v >= Lite03 {
		expect++
		actions.Go(func() {
			if _, err := s.Fetch(actx, fuzzPeer, "video", 0, 1); err != nil && !c.modelError(err) {
				t.Errorf("Fetch: %v wraps no model error", err)
			}
		})
	}
	if flags&flagProbe != 0 && v >= Lite03 {
		expect++
		_ = s.RecvEstimate()
	}

	// Hold the peer's group streams back until the engine's own streams
	// are open and written to, so that its subscriptions exist.
	c.await(t, deadline.C, s.Done(), func() bool { return c.openedLocked() >= expect && c.boundLocked() })
	c.releaseUni()
	c.await(t, deadline.C, s.Done(), func() bool { return c.idleLocked(true) })

	peerCode, peerClosed := c.closeRecord()
	if peerClosed {
		c.peerClose(peerCode)
		select {
		case <-s.Done():
		case <-deadline.C:
			fuzzHang(t, "session outlived the peer's close")
		}
	}
	select {
	case <-s.Done():
		checkEnd(t, s.Err(), setup != nil, peerClosed, peerCode)
	default:
	}

	// Shutdown without waiting for finished tracks to drain.
	shutCtx, cancel := context.WithCancel(context.Background())
	cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(shutCtx) }()
	select {
	case err := <-shut:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown: %v", err)
		}
	case <-deadline.C:
		fuzzHang(t, "Shutdown")
	}
	checkEnd(t, s.Err(), setup != nil, peerClosed, peerCode)
	acancel()
	joined := make(chan struct{})
	go func() {
		actions.Wait()
		close(joined)
	}()
	select {
	case <-joined:
	case <-deadline.C:
		fuzzHang(t, "Subscribe or Fetch after Shutdown")
	}
	c.check(t, v, relay)
}

// fuzzSetup runs the compat SETUP exchange, as the server or the client,
// giving up once the peer has nothing more to say.
func fuzzSetup(t *testing.T, c *fakeConn, client bool, deadline <-chan time.Time) (*SetupStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var setup *SetupStream
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		setup, err = ExchangeSetup(ctx, c, []uint64{uint64(Lite02), uint64(Lite01)}, client)
	}()
	c.await(t, deadline, done, func() bool { return c.idleLocked(false) })
	cancel()
	select {
	case <-done:
	case <-deadline:
		fuzzHang(t, "ExchangeSetup")
	}
	return setup, err
}

// checkEnd checks why a session ended: cleanly, because the peer broke the
// protocol, or with the peer's code when it closed the session.
func checkEnd(t *testing.T, err error, setup, peerClosed bool, peerCode uint32) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, moq.ErrDecode), errors.Is(err, moq.ErrProtocolViolation), errors.Is(err, moq.ErrBoundsExceeded):
	case setup && engine.IsStreamReset(err): // the lite-01/02 session stream
	case peerClosed && errors.Is(err, ErrorFromCode(peerCode)):
	default:
		t.Fatalf("session ended with %v", err)
	}
}

// isModelError reports whether err wraps one of the model's errors.
func isModelError(err error) bool {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return true
		}
	}
	return engine.IsStreamReset(err)
}

// modelError reports whether err, from a request of the harness, wraps a
// model error, the peer's code when it closed the session, or the
// harness's cancellation.
func (c *fakeConn) modelError(err error) bool {
	if code, closed := c.closeRecord(); closed && errors.Is(err, ErrorFromCode(code)) {
		return true
	}
	return isModelError(err) || errors.Is(err, context.Canceled)
}

// fuzzHang fails the test with every goroutine's stack.
func fuzzHang(t *testing.T, what string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	t.Fatalf("%s did not finish within %v\n%s", what, iterTimeout, buf)
}

// fakeConn is a transport.Session whose peer side is scripted.
type fakeConn struct {
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	closeErr error         // a *transport.SessionError once closed
	bidi     []*fakeStream // opened by the peer, not yet accepted
	uni      []*fakeStream
	uniOpen  bool // uni is released to AcceptUniStream
	replies  map[ControlType][]fuzzRecord
	close    *fuzzRecord
	streams  []*fakeStream // accepted or opened, in that order
	session  bool          // New has run: later streams are not SETUP's
}

func newFakeConn(recs []fuzzRecord) *fakeConn {
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &fakeConn{ctx: ctx, cancel: cancel, changed: make(chan struct{}), replies: make(map[ControlType][]fuzzRecord)}
	for _, r := range recs {
		switch r.kind {
		case recBidi:
			c.bidi = append(c.bidi, &fakeStream{c: c, peer: true, recv: true, send: true, script: r, bound: true})
		case recUni:
			c.uni = append(c.uni, &fakeStream{c: c, peer: true, recv: true, script: r, bound: true})
		case recReply:
			c.replies[r.target] = append(c.replies[r.target], r)
		case recClose:
			if c.close == nil {
				c.close = &r
			}
		}
	}
	return c
}

func (c *fakeConn) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *fakeConn) startSession() {
	c.mu.Lock()
	c.session = true
	c.mu.Unlock()
}

func (c *fakeConn) releaseUni() {
	c.mu.Lock()
	c.uniOpen = true
	c.notifyLocked()
	c.mu.Unlock()
}

func (c *fakeConn) closeRecord() (uint32, bool) {
	if c.close == nil {
		return 0, false
	}
	return c.close.code, true
}

// peerClose ends the session as the peer closing it with code.
func (c *fakeConn) peerClose(code uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr == nil {
		err := &transport.SessionError{Code: code, Reason: string(c.close.data), Remote: true}
		c.closeErr = err
		c.cancel(err)
		c.notifyLocked()
	}
}

// await waits until ready (called with c.mu held) holds and the transport
// then stays quiet for fuzzSettle, or stop is closed. A deadline first fails
// the test.
func (c *fakeConn) await(t *testing.T, deadline <-chan time.Time, stop <-chan struct{}, ready func() bool) {
	t.Helper()
	var quiet *time.Timer
	var quietC <-chan time.Time
	defer func() {
		if quiet != nil {
			quiet.Stop()
		}
	}()
	for {
		c.mu.Lock()
		ok := ready()
		ch := c.changed
		c.mu.Unlock()
		switch {
		case ok && quiet == nil:
			quiet = time.NewTimer(fuzzSettle)
			quietC = quiet.C
		case !ok && quiet != nil:
			quiet.Stop()
			quiet, quietC = nil, nil
		}
		select {
		case <-ch:
			if quiet != nil {
				quiet.Reset(fuzzSettle)
			}
		case <-quietC:
			return
		case <-stop:
			return
		case <-deadline:
			c.mu.Lock()
			state := c.describeLocked()
			c.mu.Unlock()
			fuzzHang(t, "waiting for the engine to read the input ("+state+")")
		}
	}
}

// idleLocked reports whether the engine has taken every scripted byte of
// the streams that exist (queued: and of those not yet accepted): each
// read side reached its end, waits at it, or was cancelled.
func (c *fakeConn) idleLocked(queued bool) bool {
	if queued && (len(c.bidi) > 0 || (c.uniOpen && len(c.uni) > 0)) {
		return false
	}
	for _, st := range c.streams {
		if st.recv && !st.consumed {
			return false
		}
	}
	return true
}

// openedLocked counts the bidirectional streams the engine opened.
func (c *fakeConn) openedLocked() int {
	n := 0
	for _, st := range c.streams {
		if !st.peer && st.recv && !st.setup {
			n++
		}
	}
	return n
}

// boundLocked reports whether the engine read from every stream it opened,
// which it does after writing its request, or abandoned it.
func (c *fakeConn) boundLocked() bool {
	for _, st := range c.streams {
		if !st.bound && !st.stopped && !st.reset {
			return false
		}
	}
	return true
}

func (c *fakeConn) describeLocked() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d bidi and %d uni streams queued, uni released %v;", len(c.bidi), len(c.uni), c.uniOpen)
	for i, st := range c.streams {
		fmt.Fprintf(&b, " [%d peer=%v recv=%v bound=%v consumed=%v read=%d/%d wrote=%d %x]", i, st.peer, st.recv,
			st.bound, st.consumed, st.pos, len(st.script.data), len(st.written), st.written[:min(len(st.written), 8)])
	}
	return b.String()
}

func (c *fakeConn) accept(ctx context.Context, queue *[]*fakeStream, uni bool) (*fakeStream, error) {
	c.mu.Lock()
	for {
		if c.closeErr != nil {
			err := c.closeErr
			c.mu.Unlock()
			return nil, err
		}
		if len(*queue) > 0 && (!uni || c.uniOpen) {
			st := (*queue)[0]
			*queue = (*queue)[1:]
			st.setup = !c.session
			c.streams = append(c.streams, st)
			c.notifyLocked()
			c.mu.Unlock()
			return st, nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		c.mu.Lock()
	}
}

func (c *fakeConn) open(ctx context.Context, bidi bool) (*fakeStream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil {
		return nil, c.closeErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := &fakeStream{c: c, recv: bidi, send: true, bound: !bidi, setup: !c.session}
	c.streams = append(c.streams, st)
	c.notifyLocked()
	return st, nil
}

func (c *fakeConn) AcceptStream(ctx context.Context) (transport.Stream, error) {
	st, err := c.accept(ctx, &c.bidi, false)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (c *fakeConn) AcceptUniStream(ctx context.Context) (transport.ReceiveStream, error) {
	st, err := c.accept(ctx, &c.uni, true)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (c *fakeConn) OpenStream(ctx context.Context) (transport.Stream, error) {
	st, err := c.open(ctx, true)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (c *fakeConn) OpenUniStream(ctx context.Context) (transport.SendStream, error) {
	st, err := c.open(ctx, false)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (c *fakeConn) CloseWithError(code uint32, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr == nil {
		err := &transport.SessionError{Code: code, Reason: reason}
		c.closeErr = err
		c.cancel(err)
		c.notifyLocked()
	}
	return nil
}

func (c *fakeConn) Context() context.Context { return c.ctx }
func (c *fakeConn) Protocol() string         { return "" }
func (c *fakeConn) LocalAddr() net.Addr      { return fakeAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr     { return fakeAddr{} }

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fake" }
func (fakeAddr) String() string  { return "peer" }

var errWriteClosed = errors.New("fake: write on a finished stream")

// fakeStream is a stream of fakeConn; its state is guarded by c.mu. The
// read side yields script.data, then ends as script.end says.
type fakeStream struct {
	c          *fakeConn
	peer       bool // opened by the peer
	recv, send bool
	setup      bool // accepted or opened before New: the SETUP stream

	script   fuzzRecord
	bound    bool // script chosen: at once for the peer's streams, on the first Read for ours
	pos      int
	consumed bool // the reader reached the end, waits at it, or cancelled
	stopped  bool // CancelRead was called
	stopCode uint32

	written      []byte
	finished     bool // Close was called
	reset        bool // CancelWrite was called
	resetCode    uint32
	sendCtx      context.Context
	sendCancel   context.CancelFunc
	sendCtxMaker sync.Once
}

// bindLocked picks the reply for a stream the engine opened, by the type it
// wrote first; without one the peer says nothing and holds the stream open.
func (st *fakeStream) bindLocked() {
	st.bound = true
	st.script = fuzzRecord{end: endHold}
	t, _, err := wire.ParseVarint(st.written)
	if err != nil {
		return
	}
	if q := st.c.replies[ControlType(t)]; len(q) > 0 {
		st.script, st.c.replies[ControlType(t)] = q[0], q[1:]
	}
}

func (st *fakeStream) Read(p []byte) (int, error) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !st.bound {
		st.bindLocked()
		c.notifyLocked()
	}
	for {
		switch {
		case st.stopped:
			return 0, &transport.StreamError{Code: st.stopCode}
		case c.closeErr != nil:
			return 0, c.closeErr
		case len(p) == 0:
			return 0, nil
		}
		data := st.script.data
		if st.pos < len(data) {
			n := copy(p, data[st.pos:])
			if st.script.end == endTrickle {
				n = 1
			}
			st.pos += n
			c.notifyLocked()
			return n, nil
		}
		if !st.consumed {
			st.consumed = true
			c.notifyLocked()
		}
		switch st.script.end {
		case endReset:
			return 0, &transport.StreamError{Code: st.script.code, Remote: true}
		case endHold:
			ch := c.changed
			c.mu.Unlock()
			<-ch
			c.mu.Lock()
		default:
			return 0, io.EOF
		}
	}
}

func (st *fakeStream) CancelRead(code uint32) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !st.stopped {
		st.stopped, st.stopCode, st.consumed = true, code, true
		c.notifyLocked()
	}
}

// maxWritten bounds what the harness keeps of one stream.
const maxWritten = 1 << 20

func (st *fakeStream) Write(p []byte) (int, error) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case st.reset:
		return 0, &transport.StreamError{Code: st.resetCode}
	case st.finished:
		return 0, errWriteClosed
	case c.closeErr != nil:
		return 0, c.closeErr
	}
	if len(st.written) < maxWritten {
		st.written = append(st.written, p...)
	}
	c.notifyLocked()
	return len(p), nil
}

func (st *fakeStream) Close() error {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.reset {
		return &transport.StreamError{Code: st.resetCode}
	}
	if !st.finished {
		st.finished = true
		st.endSend()
		c.notifyLocked()
	}
	return nil
}

func (st *fakeStream) CancelWrite(code uint32) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !st.reset {
		st.reset, st.resetCode = true, code
		st.endSend()
		c.notifyLocked()
	}
}

func (st *fakeStream) SetPriority(int) {}

func (st *fakeStream) sendContext() {
	st.sendCtxMaker.Do(func() { st.sendCtx, st.sendCancel = context.WithCancel(st.c.ctx) })
}

func (st *fakeStream) endSend() {
	st.sendContext()
	st.sendCancel()
}

func (st *fakeStream) Context() context.Context {
	st.sendContext()
	return st.sendCtx
}

// check parses what the engine wrote on every stream with the package's
// readers (v is 0 when SETUP failed). Outside relay mode, the groups and
// fetched frames it sent must be those of the fixture.
func (c *fakeConn) check(t *testing.T, v Version, relay bool) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	subs := c.peerSubscriptions(v)
	for i, st := range c.streams {
		if !st.send || len(st.written) >= maxWritten {
			continue
		}
		// A finished stream must hold whole messages; one reset or cut
		// off by the session's end may stop inside one.
		w := fuzzWritten{wire.NewReader(bytes.NewReader(st.written)), v, st.finished && !st.reset, relay}
		var err error
		switch {
		case st.setup && st.peer:
			err = w.setup(ReadServerSetup(w.r, new(ServerSetup)))
		case st.setup:
			err = w.setup(ReadClientSetup(w.r, new(ClientSetup)))
		case st.peer:
			err = w.reply(st.script.data)
		case st.recv:
			err = w.request()
		default:
			err = w.group(subs)
		}
		if err != nil && !errors.Is(err, io.EOF) && (w.whole || !errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Fatalf("stream %d (peer=%v bidi=%v setup=%v finished=%v reset=%v): engine wrote %x: %v",
				i, st.peer, st.recv, st.setup, st.finished, st.reset, st.written, err)
		}
	}
}

// fuzzWritten is what the engine wrote on one stream, being parsed.
type fuzzWritten struct {
	r     *wire.Reader
	v     Version
	whole bool // the stream was finished, not reset or cut off
	relay bool
}

// all reads messages of one kind after a first read that returned err.
func (w fuzzWritten) all(err error, next func() Message) error {
	for err == nil {
		err = ReadMessage(w.r, next(), w.v, 0)
	}
	return err
}

// end fails unless nothing more was written.
func (w fuzzWritten) end() error {
	if _, err := w.r.ReadByte(); err != io.EOF {
		return fmt.Errorf("bytes after the last message (%v)", err)
	}
	return io.EOF
}

// setup checks the rest of a SETUP stream after its first message.
func (w fuzzWritten) setup(err error) error {
	if err != nil || w.v == 0 {
		return thenEnd(err, w)
	}
	return w.all(nil, func() Message { return new(SessionInfo) })
}

func thenEnd(err error, w fuzzWritten) error {
	if err != nil {
		return err
	}
	return w.end()
}

// reply parses what the engine answered on a stream the peer opened with req.
func (w fuzzWritten) reply(req []byte) error {
	rr := wire.NewReader(bytes.NewReader(req))
	kind, err := ReadControlType(rr, w.v)
	if err != nil {
		return w.end()
	}
	switch kind {
	case ControlAnnounce:
		if w.v.UsesSetup() {
			err = ReadMessage(w.r, new(AnnounceInit), w.v, 0)
		}
		return w.all(err, func() Message { return new(Announce) })
	case ControlSubscribe:
		for err == nil {
			_, _, err = ReadSubscribeResponse(w.r, w.v, 0)
		}
		return err
	case ControlFetch:
		var fetch Fetch
		if ReadMessage(rr, &fetch, w.v, 0) != nil {
			return w.end()
		}
		got, err := w.frames()
		if !w.relay {
			var want []string
			if moq.NewPath(fetch.Broadcast) == fuzzLocal {
				want, _ = fixtureGroup(fetch.Track, fetch.Group)
			}
			if !w.match(got, want, err) {
				return fmt.Errorf("fetch of %+v answered with frames %q, want %q", fetch, got, want)
			}
		}
		return err
	case ControlProbe:
		return w.all(nil, func() Message { return new(Probe) })
	}
	return w.end()
}

// request parses what the engine wrote on a stream it opened.
func (w fuzzWritten) request() error {
	kind, err := ReadControlType(w.r, w.v)
	if err != nil {
		return err
	}
	switch kind {
	case ControlAnnounce:
		err = ReadMessage(w.r, new(AnnounceInterest), w.v, 0)
	case ControlSubscribe:
		err = ReadMessage(w.r, new(Subscribe), w.v, 0)
		return w.all(err, func() Message { return new(SubscribeUpdate) })
	case ControlFetch:
		err = ReadMessage(w.r, new(Fetch), w.v, 0)
	case ControlProbe:
	default:
		return fmt.Errorf("engine opened a %s stream", kind)
	}
	return thenEnd(err, w)
}

// group parses a group stream the engine sent. Outside relay mode its frames
// must be those of the group of a track the peer subscribed to with the
// header's subscribe id.
func (w fuzzWritten) group(subs map[uint64][]string) error {
	if _, err := ReadDataType(w.r); err != nil {
		return requireMore(err)
	}
	var g Group
	if err := ReadMessage(w.r, &g, w.v, 0); err != nil {
		return requireMore(err)
	}
	got, err := w.frames()
	if w.relay {
		return err
	}
	for _, track := range subs[g.SubscribeID] {
		if want, ok := fixtureGroup(track, g.Sequence); ok && w.match(got, want, err) {
			return err
		}
	}
	return fmt.Errorf("group %d for subscribe id %d (tracks %q) holds frames %q", g.Sequence, g.SubscribeID, subs[g.SubscribeID], got)
}

// frames reads frames to the end.
func (w fuzzWritten) frames() ([]string, error) {
	var got []string
	for {
		frame, err := ReadFrame(w.r, nil, 0)
		if err != nil {
			return got, err
		}
		got = append(got, string(frame))
	}
}

// match reports whether got is want, or a prefix of it when the stream was
// cut off (err is the error that ended the frames).
func (w fuzzWritten) match(got, want []string, err error) bool {
	if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
		return false
	}
	return len(got) == len(want) || !w.whole || !errors.Is(err, io.EOF)
}

// noEOF turns io.EOF before a required message into io.ErrUnexpectedEOF.
func requireMore(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// peerSubscriptions maps the ids of the peer's subscriptions to the local
// broadcast to their tracks.
func (c *fakeConn) peerSubscriptions(v Version) map[uint64][]string {
	out := make(map[uint64][]string)
	for _, st := range c.streams {
		if !st.peer || !st.send || st.setup {
			continue
		}
		r := wire.NewReader(bytes.NewReader(st.script.data))
		if kind, err := ReadControlType(r, v); err != nil || kind != ControlSubscribe {
			continue
		}
		var sub Subscribe
		if ReadMessage(r, &sub, v, 0) == nil && moq.NewPath(sub.Broadcast) == fuzzLocal {
			out[sub.ID] = append(out[sub.ID], sub.Track)
		}
	}
	return out
}

// Seeds.

// fuzzSeed builds one FuzzSession input.
type fuzzSeed struct {
	tb  testing.TB
	v   Version
	buf []byte
}

func newSeed(tb testing.TB, flags byte, v Version) *fuzzSeed {
	return &fuzzSeed{tb: tb, v: v, buf: []byte{flags}}
}

func (s *fuzzSeed) add(kind, end int, code uint32, target ControlType, data []byte) *fuzzSeed {
	s.buf = append(s.buf, byte(kind|end<<2|int(code)<<4))
	if kind == recReply {
		s.buf = append(s.buf, byte(target))
	}
	s.buf = wire.AppendVarint(s.buf, uint64(len(data)))
	s.buf = append(s.buf, data...)
	return s
}

// msgs encodes messages, each size-prefixed, after an optional stream type.
func (s *fuzzSeed) msgs(kind ControlType, ms ...Message) []byte {
	var b []byte
	if kind != noType {
		b = wire.AppendVarint(b, uint64(kind))
	}
	for _, m := range ms {
		var err error
		if b, err = AppendMessage(b, m, s.v); err != nil {
			s.tb.Fatalf("fuzzSeed %T in %s: %v", m, s.v, err)
		}
	}
	return b
}

const noType ControlType = 1 << 60

func (s *fuzzSeed) group(id, seq uint64, frames ...string) []byte {
	b, err := AppendGroupHeader(nil, &Group{SubscribeID: id, Sequence: seq}, s.v)
	if err != nil {
		s.tb.Fatal(err)
	}
	for _, f := range frames {
		b, _ = AppendFrame(b, []byte(f))
	}
	return b
}

func (s *fuzzSeed) clientSetup(versions ...Version) []byte {
	var vs []uint64
	for _, v := range versions {
		vs = append(vs, uint64(v))
	}
	b, err := AppendClientSetup(nil, &ClientSetup{Versions: vs, Params: setupParams()})
	if err != nil {
		s.tb.Fatal(err)
	}
	return b
}

func (s *fuzzSeed) serverSetup() []byte {
	b, err := AppendServerSetup(nil, &ServerSetup{Version: uint64(s.v), Params: setupParams()})
	if err != nil {
		s.tb.Fatal(err)
	}
	return b
}

func ptrGroup(seq uint64) OptGroup { return OptGroup{Seq: seq, Valid: true} }

func sessionSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	modes := []struct {
		mode byte
		v    Version
	}{{modeSetupServer, Lite01}, {modeSetupServer, Lite02}, {modeSetupClient, Lite02}, {modeLite03, Lite03}, {modeLite04, Lite04}}
	for _, m := range modes {
		v := m.v
		newer := v >= Lite03

		// A peer that does a bit of everything.
		s := newSeed(tb, m.mode|flagTrack|flagSubscribe|flagFetch|flagProbe, v)
		if m.mode == modeSetupServer {
			s.add(recBidi, endHold, 0, 0, append(s.clientSetup(v), s.msgs(noType, &SessionInfo{Bitrate: 1e6})...))
		}
		if m.mode == modeSetupClient {
			s.add(recReply, endHold, 0, ClientSetupType, s.serverSetup())
		}
		sub := &Subscribe{ID: 1, Broadcast: fuzzLocal, Track: "video", Priority: 1}
		if newer {
			sub.StartGroup, sub.Ordered = ptrGroup(0), true
		}
		s.add(recBidi, endHold, 0, 0, s.msgs(ControlAnnounce, &AnnounceInterest{Prefix: "room"}))
		s.add(recBidi, endHold, 0, 0, s.msgs(ControlSubscribe, sub))
		s.add(recBidi, endFin, 0, 0, s.msgs(ControlSubscribe, &Subscribe{ID: 2, Broadcast: fuzzLocal, Track: "audio", Priority: 3},
			&SubscribeUpdate{Priority: 4}))
		s.add(recBidi, endFin, 0, 0, s.msgs(ControlSubscribe, &Subscribe{ID: 3, Broadcast: "room/nobody", Track: "video"}))
		s.add(recUni, endFin, 0, 0, s.group(0, 5, "peer 5.0", "peer 5.1"))
		s.add(recUni, endTrickle, 0, 0, s.group(1, 0, "peer 0.0"))
		if v.UsesSetup() {
			s.add(recReply, endHold, 0, ControlAnnounce, s.msgs(noType, &AnnounceInit{Suffixes: []string{fuzzPeer}}, &Announce{Active: true, Suffix: "room/carol"}))
			s.add(recReply, endHold, 0, ControlSubscribe, s.msgs(noType, &SubscribeOk{Priority: 1}))
		} else {
			s.add(recBidi, endFin, 0, 0, s.msgs(ControlFetch, &Fetch{Broadcast: fuzzLocal, Track: "video", Group: 1}))
			s.add(recBidi, endHold, 0, 0, s.msgs(ControlProbe, &Probe{Bitrate: 5e6}))
			s.add(recReply, endHold, 0, ControlAnnounce, s.msgs(noType, &Announce{Active: true, Suffix: fuzzPeer, Hops: []uint64{7}},
				&Announce{Active: true, Suffix: "room/carol"}, &Announce{Active: false, Suffix: "room/carol"}))
			ok := s.msgs(noType, &SubscribeOk{Priority: 2, StartGroup: ptrGroup(0)})
			drop := s.msgs(noType, &SubscribeDrop{Start: 1, End: 2, Error: 2})
			s.add(recReply, endHold, 0, ControlSubscribe, slices.Concat([]byte{0}, ok, []byte{1}, drop))
			s.add(recReply, endHold, 0, ControlSubscribe, slices.Concat([]byte{0}, ok))
			frames, _ := AppendFrame(nil, []byte("fetched"))
			s.add(recReply, endFin, 0, ControlFetch, frames)
			s.add(recReply, endHold, 0, ControlProbe, s.msgs(noType, &Probe{Bitrate: 1e6, RTT: 20 * time.Millisecond}))
		}
		if v >= Lite04 {
			s.add(recBidi, endFin, 0, 0, s.msgs(ControlGoaway, &Goaway{URI: "https://relay.example.com/moq"}))
		}
		out = append(out, s.buf)

		// A relay: the peer subscribes, through us, to what it announced.
		s = newSeed(tb, m.mode|flagRelay, v)
		if m.mode == modeSetupServer {
			s.add(recBidi, endHold, 0, 0, s.clientSetup(v, DraftIETF14))
		}
		if m.mode == modeSetupClient {
			s.add(recReply, endHold, 0, ClientSetupType, s.serverSetup())
		}
		if v.UsesSetup() {
			s.add(recReply, endHold, 0, ControlAnnounce, s.msgs(noType, &AnnounceInit{Suffixes: []string{fuzzPeer}}))
			s.add(recReply, endHold, 0, ControlSubscribe, s.msgs(noType, &SubscribeOk{}))
		} else {
			s.add(recReply, endHold, 0, ControlAnnounce, s.msgs(noType, &Announce{Active: true, Suffix: fuzzPeer, Hops: []uint64{fuzzHop}}))
			s.add(recReply, endHold, 0, ControlSubscribe, slices.Concat([]byte{0}, s.msgs(noType, &SubscribeOk{})))
		}
		s.add(recBidi, endHold, 0, 0, s.msgs(ControlAnnounce, &AnnounceInterest{ExcludeHop: fuzzHop}))
		s.add(recBidi, endHold, 0, 0, s.msgs(ControlSubscribe, &Subscribe{ID: 0, Broadcast: fuzzPeer, Track: "video"}))
		s.add(recUni, endFin, 0, 0, s.group(0, 0, "relayed"))
		s.add(recClose, 0, 0, 0, []byte("bye"))
		out = append(out, s.buf)

		// A peer that breaks the rules, one way per stream.
		s = newSeed(tb, m.mode|flagTrack, v)
		if m.mode == modeSetupServer {
			s.add(recBidi, endReset, 5, 0, s.clientSetup(v))
		}
		if m.mode == modeSetupClient {
			s.add(recReply, endFin, 0, ClientSetupType, s.serverSetup())
		}
		s.add(recBidi, endFin, 0, 0, []byte{0x3f})
		s.add(recBidi, endReset, 3, 0, s.msgs(ControlSubscribe))
		s.add(recUni, endFin, 0, 0, []byte{1, 2, 3})
		s.add(recUni, endReset, 15, 0, s.group(0, 1, "cut"))
		s.add(recReply, endFin, 0, ControlAnnounce, s.msgs(noType, &Announce{Active: false, Suffix: "never"}))
		s.add(recClose, 0, 15, 0, []byte("protocol violation"))
		out = append(out, s.buf)
	}
	return append(out, vectorSeeds(tb)...)
}

// vectorSeeds builds one input per lite vector file: its stream openings as
// the peer's streams, its replies as answers to the engine's streams.
func vectorSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	for _, vf := range []struct {
		file string
		mode byte
		v    Version
	}{{"lite-01.json", modeSetupServer, Lite01}, {"lite-02.json", modeSetupClient, Lite02}, {"lite-03.json", modeLite03, Lite03}, {"lite-04.json", modeLite04, Lite04}} {
		var file struct {
			Vectors []struct {
				Name, Message, Hex string
				Fields             map[string]json.RawMessage
			}
		}
		if err := json.Unmarshal(vectortest.Load(tb, vf.file), &file); err != nil {
			tb.Fatalf("%s: %v", vf.file, err)
		}
		s := newSeed(tb, vf.mode|flagTrack|flagSubscribe|flagFetch|flagProbe, vf.v)
		var setup []byte
		replies := make(map[ControlType][]byte)
		var later []func()
		for _, vec := range file.Vectors {
			b, err := hex.DecodeString(vec.Hex)
			if err != nil {
				tb.Fatal(err)
			}
			_, opens := vec.Fields["stream_type"]
			switch {
			case vec.Name == "client_setup_single_version_no_params" && vf.mode == modeSetupServer:
				setup = b
			case vec.Message == "server_setup" && replies[ClientSetupType] == nil && vf.mode == modeSetupClient:
				replies[ClientSetupType] = b
			case vec.Message == "session_info" && setup != nil:
				setup = append(setup, b...)
			case opens && (vec.Message == "group" || vec.Message == "group_stream"):
				later = append(later, func() { s.add(recUni, endFin, 0, 0, b) })
			case opens && vec.Message != "control_stream_type":
				end := endFin
				if vec.Message == "announce_interest" || vec.Message == "subscribe" {
					end = endHold
				}
				later = append(later, func() { s.add(recBidi, end, 0, 0, b) })
			case vec.Name == "announce_init_two" || !vf.v.UsesSetup() && (vec.Name == "announce_active" || vec.Name == "announce_active_with_hops"):
				replies[ControlAnnounce] = append(replies[ControlAnnounce], b...)
			case vec.Message == "subscribe_response":
				replies[ControlSubscribe] = append(replies[ControlSubscribe], b...)
			case vec.Message == "frame":
				replies[ControlFetch] = append(replies[ControlFetch], b...)
			case vec.Message == "probe":
				replies[ControlProbe] = append(replies[ControlProbe], b...)
			}
		}
		if setup != nil {
			s.add(recBidi, endHold, 0, 0, setup)
		}
		for _, add := range later {
			add()
		}
		for _, kind := range []ControlType{ClientSetupType, ControlAnnounce, ControlSubscribe, ControlFetch, ControlProbe} {
			if b := replies[kind]; b != nil {
				s.add(recReply, endHold, 0, kind, b)
			}
		}
		out = append(out, s.buf)
	}
	return out
}
