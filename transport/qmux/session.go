package qmux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

const (
	// readLimit bounds one incoming WebSocket message. It is above MaxFrameSize so
	// that an oversized STREAM frame is reported as such instead of as a WebSocket error.
	readLimit = 2 * MaxFrameSize
	// sendBufferSize is how much written but unsent data a stream holds before
	// Write blocks.
	sendBufferSize = 64 << 10
	// maxReasonLen bounds the reason phrase so that a close frame fits MaxFrameSize.
	maxReasonLen = MaxFrameSize - 32
	// maxStreamsLimit is the largest MAX_STREAMS value RFC 9000 §4.6 allows.
	maxStreamsLimit = 1 << 60

	// The legacy framing has no flow control. Once this many received bytes are
	// unread, the session stops reading the WebSocket until the application
	// catches up, so TCP slows the peer down.
	legacyRecvBuffer = 16 << 20
	// legacyMaxStreams bounds the peer streams open at once in the legacy framing;
	// a peer exceeding it is cut off.
	legacyMaxStreams = 4096
)

const (
	bidi = 0
	uni  = 1
)

// session implements transport.Session over one WebSocket connection. One reader
// goroutine decodes and applies incoming frames; one writer goroutine encodes
// and sends everything; one more sends keep-alive pings. All belong to the
// session and exit when it closes; all state is guarded by mu.
type session struct {
	conn     *websocket.Conn
	framing  Framing
	isServer bool
	protocol string
	laddr    net.Addr
	raddr    net.Addr
	params   TransportParams // what we declared

	ctx      context.Context // cancelled with the close cause
	cancel   context.CancelCauseFunc
	ioCtx    context.Context // WebSocket I/O; cancelled to abort it
	ioCancel context.CancelFunc
	wg       sync.WaitGroup

	// Liveness (see liveness.go). live is set before the goroutines start and
	// never changes (live.clock is nil in a session without a connection);
	// writeSince is atomic; the others are guarded by mu.
	live          liveness
	idleTimer     *time.Timer   // closes the session when nothing was received for the idle timeout
	readerPaused  bool          // the reader waits for the application, not for the peer
	keepAliveWake chan struct{} // the keep-alive period may have changed
	writeSince    atomic.Int64  // when the WebSocket write in progress started (clock time + 1), 0 if none

	mu            sync.Mutex
	closed        bool
	cause         error
	closeFrame    *Frame        // close frame still to send
	closeTimeout  time.Duration // bounds closing: close frame, WebSocket close handshake
	abortTimer    *time.Timer   // aborts WebSocket I/O if closing takes too long
	wsCloseCode   websocket.StatusCode
	wsCloseReason string

	readerWake chan struct{} // legacy framing: the reader waits for the application

	// testHookBackpressure, if set, is called when the reader starts waiting.
	testHookBackpressure func()

	// Writer state.
	writerWake     chan struct{}
	ctrl           []Frame // frames sent before stream data, in order
	sendMaxData    bool
	sendMaxStreams [2]bool
	maxStreamDataQ []*stream
	active         []*stream // streams with data or a FIN to send

	// Peer's declared limits (qmux-00).
	paramsReceived bool
	peerParams     TransportParams
	gotFrame       bool
	// layout is how the peer encodes frames and how we encode them for it:
	// Layout006 until its transport parameters show @moq/qmux 0.3.x (peerLayout).
	// The legacy framing has no parameters and keeps Layout006.
	layout Layout

	// Connection-level flow control: what we may send and what we accept.
	sendConnMax      uint64
	sendConnUsed     uint64
	recvConnMax      uint64
	recvConnOffset   uint64
	recvConnConsumed uint64

	// Stream counts, indexed by bidi/uni.
	nextLocal      [2]uint64 // index of the next stream we open
	peerMaxStreams [2]uint64 // how many streams the peer lets us open
	nextPeer       [2]uint64 // one past the highest peer stream index seen
	ourMaxStreams  [2]uint64 // how many streams we let the peer open
	openWake       chan struct{}

	streams    map[uint64]*stream
	acceptQ    [2][]*stream
	acceptWake [2]chan struct{}
	seq        uint64
}

var _ transport.Session = (*session)(nil)

// newSession starts the goroutines of a session over conn. live.clock must be
// the one conn's ping and pong callbacks mark.
func newSession(conn *websocket.Conn, framing Framing, protocol string, isServer bool, laddr, raddr net.Addr, live liveness) *session {
	conn.SetReadLimit(readLimit)
	s := newSessionState(framing, protocol, isServer)
	s.conn, s.laddr, s.raddr = conn, laddr, raddr
	s.live = live
	s.mu.Lock()
	if live.idle > 0 {
		s.idleTimer = time.AfterFunc(live.idle, s.checkIdle)
	}
	s.mu.Unlock()
	s.wg.Add(2)
	go s.readLoop()
	go s.writeLoop()
	if live.keepAlive > 0 {
		s.wg.Add(1)
		go s.keepAliveLoop()
	}
	return s
}

// newSessionState returns a session without a connection or goroutines: the
// state machine that frames are applied to.
func newSessionState(framing Framing, protocol string, isServer bool) *session {
	s := &session{
		framing:      framing,
		isServer:     isServer,
		protocol:     protocol,
		params:       defaultTransportParams,
		streams:      make(map[uint64]*stream),
		closeTimeout: defaultCloseTimeout,
		wsCloseCode:  websocket.StatusNormalClosure,
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	s.ioCtx, s.ioCancel = context.WithCancel(context.Background())
	if framing == QMux00 {
		s.recvConnMax = s.params.InitialMaxData
		s.ourMaxStreams = [2]uint64{s.params.InitialMaxStreamsBidi, s.params.InitialMaxStreamsUni}
		// The transport parameters are the first frame we send.
		s.ctrl = append(s.ctrl, Frame{Kind: KindTransportParameters, Params: s.params})
	} else {
		s.sendConnMax = wire.MaxVarint
		s.peerMaxStreams = [2]uint64{maxStreamsLimit, maxStreamsLimit}
		s.ourMaxStreams = [2]uint64{legacyMaxStreams, legacyMaxStreams}
	}
	return s
}

// notify wakes everyone waiting on *ch.
func notify(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}

// waitCh returns the channel notify(ch) will close.
func waitCh(ch *chan struct{}) chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

func clampCode(c uint64) uint32 {
	if c > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(c)
}

func (s *session) OpenStream(ctx context.Context) (transport.Stream, error) {
	st, err := s.open(ctx, bidi)
	if err != nil {
		return nil, err
	}
	return bidiStream{sendStream{st}, receiveStream{st}}, nil
}

func (s *session) OpenUniStream(ctx context.Context) (transport.SendStream, error) {
	st, err := s.open(ctx, uni)
	if err != nil {
		return nil, err
	}
	return sendStream{st}, nil
}

func (s *session) AcceptStream(ctx context.Context) (transport.Stream, error) {
	st, err := s.accept(ctx, bidi)
	if err != nil {
		return nil, err
	}
	return bidiStream{sendStream{st}, receiveStream{st}}, nil
}

func (s *session) AcceptUniStream(ctx context.Context) (transport.ReceiveStream, error) {
	st, err := s.accept(ctx, uni)
	if err != nil {
		return nil, err
	}
	return receiveStream{st}, nil
}

func (s *session) open(ctx context.Context, dir int) (*stream, error) {
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return nil, s.cause
		}
		if (s.framing != QMux00 || s.paramsReceived) && s.nextLocal[dir] < s.peerMaxStreams[dir] {
			break
		}
		ch := waitCh(&s.openWake)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.ctx.Done():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
	id := s.nextLocal[dir]<<2 | uint64(dir)<<1
	if s.isServer {
		id |= 1
	}
	s.nextLocal[dir]++
	st := s.newStreamLocked(id)
	s.mu.Unlock()
	return st, nil
}

func (s *session) accept(ctx context.Context, dir int) (*stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if q := s.acceptQ[dir]; len(q) > 0 {
			st := q[0]
			q[0] = nil
			s.acceptQ[dir] = q[1:]
			st.accepted = true
			s.maybeRetireLocked(st)
			return st, nil
		}
		if s.closed {
			return nil, s.cause
		}
		ch := waitCh(&s.acceptWake[dir])
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.ctx.Done():
		case <-ctx.Done():
			s.mu.Lock()
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
}

// CloseWithError sends APPLICATION_CLOSE and closes the WebSocket. It returns
// once the frame has been written and the WebSocket closed (the peer has been
// told, so the process may exit), or, if the peer does not read, after
// closeTimeout (1 s), the connection then being cut. Pending stream data is
// discarded, as in QUIC.
func (s *session) CloseWithError(code uint32, reason string) error {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	s.mu.Lock()
	s.closeLocked(&transport.SessionError{Code: code, Reason: reason},
		&Frame{Kind: KindApplicationClose, Code: uint64(code), Reason: reason})
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *session) Context() context.Context { return s.ctx }
func (s *session) Protocol() string         { return s.protocol }
func (s *session) LocalAddr() net.Addr      { return s.laddr }
func (s *session) RemoteAddr() net.Addr     { return s.raddr }

// closeLocked ends the session with cause; frame, if not nil, is sent to the peer
// before the WebSocket is closed. Only the first call has an effect.
func (s *session) closeLocked(cause error, frame *Frame) {
	if s.closed {
		return
	}
	s.closed = true
	s.cause = cause
	s.closeFrame = frame
	// Pending frames are dropped, except transport parameters not sent yet: a
	// qmux-00 peer takes any other first frame, the close too, as a violation.
	if len(s.ctrl) > 0 && s.ctrl[0].Kind == KindTransportParameters && frame != nil {
		s.ctrl = s.ctrl[:1]
	} else {
		s.ctrl = nil
	}
	s.active = nil
	s.maxStreamDataQ = nil
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	s.cancel(cause) // wakes every waiter, and cancels the streams' contexts
	s.abortTimer = time.AfterFunc(s.closeTimeout, s.abort)
	notify(&s.writerWake)
	notify(&s.keepAliveWake)
}

// failLocked closes the session because of a QMux-level error.
func (s *session) failLocked(code TransportErrorCode, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	f := &Frame{Kind: KindConnectionClose, Code: uint64(code), Reason: reason}
	if s.framing != QMux00 {
		f.Kind = KindApplicationClose // the only close frame the legacy framing has
	}
	s.closeLocked(&TransportError{Code: code, Reason: reason}, f)
}

func connectionLost(err error) error {
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return &TransportError{Code: FrameEncodingError, Reason: fmt.Sprintf("websocket message exceeds %d bytes", readLimit)}
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, err)
}

// readLoop reads WebSocket messages until the connection ends and applies the
// frames they carry.
func (s *session) readLoop() {
	defer s.wg.Done()
	buf := make([]byte, readLimit+1)
	for {
		s.waitForReader()
		typ, msg, err := s.readMessage(buf)
		if err != nil {
			s.mu.Lock()
			s.closeLocked(connectionLost(err), nil)
			s.mu.Unlock()
			return
		}
		s.live.clock.mark()
		if typ == websocket.MessageBinary { // text messages carry no frames; @moq/qmux ignores them too
			s.handleMessage(msg)
		}
	}
}

// waitForReader blocks, in the legacy framing, while the application has
// legacyRecvBuffer or more received bytes left to read.
//
// Meanwhile the idle timer does not run: the silence is ours, not the peer's.
func (s *session) waitForReader() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.framing != QMux00 && !s.closed && s.recvConnOffset-s.recvConnConsumed >= legacyRecvBuffer {
		s.readerPaused = true
		ch := waitCh(&s.readerWake)
		if s.testHookBackpressure != nil {
			s.testHookBackpressure()
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.ctx.Done():
		}
		s.mu.Lock()
	}
	if s.readerPaused {
		s.readerPaused = false
		s.live.clock.mark() // the idle timeout starts afresh
	}
}

// handleMessage applies the frame in one WebSocket binary message. Bytes after
// the frame are ignored, as @moq/qmux does.
func (s *session) handleMessage(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	f, _, err := ParseFrameLayout(msg, s.framing, s.layout)
	if err != nil {
		s.failLocked(FrameEncodingError, "%v", err)
		return
	}
	s.handleFrameLocked(&f)
}

// readMessage reads one message into buf, which is one byte longer than the
// read limit the WebSocket enforces.
func (s *session) readMessage(buf []byte) (websocket.MessageType, []byte, error) {
	typ, r, err := s.conn.Reader(s.ioCtx)
	if err != nil {
		return 0, nil, err
	}
	n := 0
	for {
		if n == len(buf) {
			return 0, nil, websocket.ErrMessageTooBig
		}
		k, err := r.Read(buf[n:])
		n += k
		if err == io.EOF {
			return typ, buf[:n], nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// writeLoop sends queued frames until the session is closed, then sends the close
// frame, if any, and closes the WebSocket.
func (s *session) writeLoop() {
	defer s.wg.Done()
	buf := make([]byte, 0, MaxFrameSize+64)
	for {
		s.mu.Lock()
		msg := s.nextFrameLocked(buf[:0])
		for msg == nil && !s.closed {
			ch := waitCh(&s.writerWake)
			s.mu.Unlock()
			<-ch
			s.mu.Lock()
			msg = s.nextFrameLocked(buf[:0])
		}
		s.mu.Unlock()
		if msg == nil {
			break
		}
		s.writing(true)
		err := s.conn.Write(s.ioCtx, websocket.MessageBinary, msg)
		s.writing(false)
		if err != nil {
			s.mu.Lock()
			s.closeLocked(connectionLost(err), nil)
			s.mu.Unlock()
			break
		}
		buf = msg[:0]
	}
	// The close handshake waits for the peer's answer; abortTimer bounds it.
	s.mu.Lock()
	code, reason := s.wsCloseCode, s.wsCloseReason
	s.mu.Unlock()
	_ = s.conn.Close(code, reason)
	s.mu.Lock()
	s.abortTimer.Stop()
	s.mu.Unlock()
	s.ioCancel()
}

// encodeLocked appends f to buf in the peer's layout. Frames built by the
// session always encode; a failure is reported as an internal error.
func (s *session) encodeLocked(buf []byte, f *Frame) []byte {
	b, err := AppendFrameLayout(buf, f, s.framing, s.layout)
	if err != nil {
		s.failLocked(InternalError, "encoding %v: %v", f.Kind, err)
		return nil
	}
	return b
}

// nextFrameLocked encodes the next frame to send into buf, or returns nil when
// there is nothing to send now. Control frames go first, then stream data from
// the most urgent stream that has credit, earliest opened first.
func (s *session) nextFrameLocked(buf []byte) []byte {
	if s.closed {
		if len(s.ctrl) > 0 { // transport parameters not sent yet (closeLocked)
			f := s.ctrl[0]
			s.ctrl = nil
			if b, err := AppendFrameLayout(buf, &f, s.framing, s.layout); err == nil {
				return b
			}
		}
		// The close frame is encoded only now, in the layout the peer reads: one
		// it cannot parse would lose our code and reason.
		if f := s.closeFrame; f != nil {
			s.closeFrame = nil
			if b, err := AppendFrameLayout(buf, f, s.framing, s.layout); err == nil {
				return b
			}
		}
		return nil
	}
	if len(s.ctrl) > 0 {
		f := s.ctrl[0]
		s.ctrl[0] = Frame{}
		s.ctrl = s.ctrl[1:]
		return s.encodeLocked(buf, &f)
	}
	if s.sendMaxData {
		s.sendMaxData = false
		return s.encodeLocked(buf, &Frame{Kind: KindMaxData, Max: s.recvConnMax})
	}
	for dir, kind := range [2]Kind{KindMaxStreamsBidi, KindMaxStreamsUni} {
		if s.sendMaxStreams[dir] {
			s.sendMaxStreams[dir] = false
			return s.encodeLocked(buf, &Frame{Kind: kind, Max: s.ourMaxStreams[dir]})
		}
	}
	for len(s.maxStreamDataQ) > 0 {
		st := s.maxStreamDataQ[0]
		s.maxStreamDataQ[0] = nil
		s.maxStreamDataQ = s.maxStreamDataQ[1:]
		st.maxStreamDataQueued = false
		if !st.recvDone() {
			return s.encodeLocked(buf, &Frame{Kind: KindMaxStreamData, StreamID: st.id, Max: st.recvMax})
		}
	}
	return s.nextStreamFrameLocked(buf)
}

func (s *session) nextStreamFrameLocked(buf []byte) []byte {
	connCredit := s.sendConnMax - s.sendConnUsed
	best := -1
	for i, st := range s.active {
		pending := st.pending()
		if pending > 0 && (connCredit == 0 || st.sendMax == st.sendOffset) {
			continue // blocked by flow control
		}
		if best < 0 || st.urgency < s.active[best].urgency ||
			(st.urgency == s.active[best].urgency && st.seq < s.active[best].seq) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	st := s.active[best]
	n := min(uint64(st.pending()), MaxStreamPayload, connCredit, st.sendMax-st.sendOffset)
	f := Frame{Kind: KindStream, StreamID: st.id, Offset: st.sendOffset, Data: st.sendBuf[st.sendHead : st.sendHead+int(n)]}
	f.Fin = st.finQueued && int(n) == st.pending()
	b := s.encodeLocked(buf, &f)
	if b == nil {
		return nil
	}
	st.sendHead += int(n)
	if st.sendHead == len(st.sendBuf) {
		st.sendBuf, st.sendHead = st.sendBuf[:0], 0
	}
	st.sendOffset += n
	s.sendConnUsed += n
	st.opened = true
	if f.Fin {
		st.finSent = true
	}
	if st.pending() == 0 && (!st.finQueued || st.finSent) {
		last := len(s.active) - 1
		s.active[best] = s.active[last]
		s.active[last] = nil
		s.active = s.active[:last]
		st.isActive = false
	}
	notify(&st.sendWake)
	if st.finSent {
		s.maybeRetireLocked(st)
	}
	return b
}

// activateLocked makes st a candidate for the writer.
func (s *session) activateLocked(st *stream) {
	if !st.isActive {
		st.isActive = true
		s.active = append(s.active, st)
	}
	notify(&s.writerWake)
}

func (s *session) deactivateLocked(st *stream) {
	if !st.isActive {
		return
	}
	st.isActive = false
	for i, a := range s.active {
		if a == st {
			last := len(s.active) - 1
			s.active[i] = s.active[last]
			s.active[last] = nil
			s.active = s.active[:last]
			return
		}
	}
}

func (s *session) queueLocked(f Frame) {
	s.ctrl = append(s.ctrl, f)
	notify(&s.writerWake)
}

// streamDir returns whether id is uni, and whether we initiated it.
func (s *session) streamDir(id uint64) (dir int, local bool) {
	dir = int(id>>1) & 1
	local = (id&1 == 1) == s.isServer
	return dir, local
}

// canRecv reports whether the stream id has a receive side here.
func (s *session) canRecv(id uint64) bool {
	dir, local := s.streamDir(id)
	return dir == bidi || !local
}

// canSend reports whether the stream id has a send side here.
func (s *session) canSend(id uint64) bool {
	dir, local := s.streamDir(id)
	return dir == bidi || local
}

// lookupLocked finds the stream a frame refers to. It returns nil, with no error,
// for a stream that is already gone (the frame is then ignored). With create, a
// frame for a new peer stream opens it, subject to our stream limit.
func (s *session) lookupLocked(id uint64, create bool) (*stream, error) {
	if st, ok := s.streams[id]; ok {
		return st, nil
	}
	dir, local := s.streamDir(id)
	index := id >> 2
	if local {
		if index >= s.nextLocal[dir] {
			return nil, &TransportError{Code: StreamStateError, Reason: fmt.Sprintf("frame for stream %d, which we have not opened", id)}
		}
		return nil, nil
	}
	if index < s.nextPeer[dir] || !create {
		return nil, nil
	}
	if index >= s.ourMaxStreams[dir] {
		return nil, &TransportError{Code: StreamLimitError, Reason: fmt.Sprintf("stream %d exceeds the limit of %d streams", id, s.ourMaxStreams[dir])}
	}
	// As in QUIC, opening a stream opens every lower-numbered stream of its kind:
	// a peer's streams may first appear out of order.
	var st *stream
	for ; s.nextPeer[dir] <= index; s.nextPeer[dir]++ {
		st = s.newStreamLocked(s.nextPeer[dir]<<2 | id&3)
		s.acceptQ[dir] = append(s.acceptQ[dir], st)
	}
	notify(&s.acceptWake[dir])
	return st, nil
}

// newStreamLocked creates the state of a stream we open or the peer opened.
func (s *session) newStreamLocked(id uint64) *stream {
	dir, local := s.streamDir(id)
	st := &stream{s: s, id: id, local: local, urgency: 3, seq: s.seq}
	s.seq++
	st.hasSend = dir == bidi || local
	st.hasRecv = dir == bidi || !local
	legacy := s.framing != QMux00
	if st.hasSend {
		st.sendCtx, st.sendCancel = context.WithCancel(s.ctx)
		switch {
		case legacy:
			st.sendMax = wire.MaxVarint
		case dir == uni:
			st.sendMax = s.peerParams.InitialMaxStreamDataUni
		case local:
			st.sendMax = s.peerParams.InitialMaxStreamDataBidiRemote
		default:
			st.sendMax = s.peerParams.InitialMaxStreamDataBidiLocal
		}
	}
	if st.hasRecv {
		switch {
		case legacy:
			st.recvWindow = wire.MaxVarint
		case dir == uni:
			st.recvWindow = s.params.InitialMaxStreamDataUni
		case local:
			st.recvWindow = s.params.InitialMaxStreamDataBidiLocal
		default:
			st.recvWindow = s.params.InitialMaxStreamDataBidiRemote
		}
		st.recvMax = st.recvWindow
	}
	s.streams[id] = st
	return st
}

// maybeRetireLocked forgets a stream once both of its sides are finished. A peer
// stream counts against our stream limit until then (and until the application
// accepted it), after which the peer is granted a replacement.
func (s *session) maybeRetireLocked(st *stream) {
	if st.retired || (st.hasSend && !st.sendDone()) || (st.hasRecv && !st.recvDone()) {
		return
	}
	if !st.local && !st.accepted {
		return
	}
	st.retired = true
	delete(s.streams, st.id)
	if st.sendCancel != nil {
		st.sendCancel()
	}
	if !st.local {
		dir, _ := s.streamDir(st.id)
		s.ourMaxStreams[dir]++
		if s.framing == QMux00 {
			s.sendMaxStreams[dir] = true
			notify(&s.writerWake)
		}
	}
}

// consumeConnLocked returns n received bytes to the connection window.
func (s *session) consumeConnLocked(n uint64) {
	s.recvConnConsumed += n
	if s.framing != QMux00 {
		if s.recvConnOffset-s.recvConnConsumed < legacyRecvBuffer {
			notify(&s.readerWake)
		}
		return
	}
	// Grant more once a quarter of the window is used, keeping the peer's pipe full.
	window := s.params.InitialMaxData
	if s.recvConnMax-s.recvConnConsumed <= window-window/4 {
		s.recvConnMax = s.recvConnConsumed + window
		s.sendMaxData = true
		notify(&s.writerWake)
	}
}

// consumeStreamLocked returns n read bytes of st to the stream window.
func (s *session) consumeStreamLocked(st *stream, n uint64) {
	st.recvConsumed += n
	s.consumeConnLocked(n)
	if s.framing != QMux00 || st.recvDone() {
		return
	}
	if st.recvMax-st.recvConsumed <= st.recvWindow-st.recvWindow/4 {
		st.recvMax = st.recvConsumed + st.recvWindow
		if !st.maxStreamDataQueued {
			st.maxStreamDataQueued = true
			s.maxStreamDataQ = append(s.maxStreamDataQ, st)
		}
		notify(&s.writerWake)
	}
}

func (s *session) handleFrameLocked(f *Frame) {
	if s.framing == QMux00 && !s.gotFrame && f.Kind != KindTransportParameters {
		s.failLocked(TransportParameterError, "first frame is %v, not QX_TRANSPORT_PARAMETERS", f.Kind)
		return
	}
	s.gotFrame = true
	switch f.Kind {
	case KindTransportParameters:
		s.handleParamsLocked(&f.Params)
	case KindStream:
		s.handleStreamLocked(f)
	case KindResetStream:
		s.handleResetLocked(f)
	case KindStopSending:
		s.handleStopSendingLocked(f)
	case KindApplicationClose:
		s.closeLocked(&transport.SessionError{Code: clampCode(f.Code), Reason: f.Reason, Remote: true}, nil)
	case KindConnectionClose:
		s.closeLocked(&TransportError{Code: TransportErrorCode(f.Code), Reason: f.Reason, Remote: true}, nil)
	case KindMaxData:
		if f.Max > s.sendConnMax {
			s.sendConnMax = f.Max
			notify(&s.writerWake)
		}
	case KindMaxStreamData:
		s.handleMaxStreamDataLocked(f)
	case KindMaxStreamsBidi, KindMaxStreamsUni:
		dir := bidi
		if f.Kind == KindMaxStreamsUni {
			dir = uni
		}
		if f.Max > maxStreamsLimit {
			s.failLocked(FrameEncodingError, "%v of %d exceeds 2^60", f.Kind, f.Max)
			return
		}
		if f.Max > s.peerMaxStreams[dir] {
			s.peerMaxStreams[dir] = f.Max
			notify(&s.openWake)
		}
	default:
		// DATA_BLOCKED, STREAM_DATA_BLOCKED, STREAMS_BLOCKED, DATAGRAM and unknown
		// frames carry nothing we act on.
	}
}

func (s *session) handleParamsLocked(p *TransportParams) {
	if s.paramsReceived {
		return // only the first counts, as in @moq/qmux
	}
	if p.InitialMaxStreamsBidi > maxStreamsLimit || p.InitialMaxStreamsUni > maxStreamsLimit {
		s.failLocked(TransportParameterError, "initial_max_streams exceeds 2^60")
		return
	}
	s.paramsReceived = true
	s.peerParams = *p
	s.layout = peerLayout(p)
	s.sendConnMax = p.InitialMaxData
	s.peerMaxStreams = [2]uint64{p.InitialMaxStreamsBidi, p.InitialMaxStreamsUni}
	notify(&s.openWake)
	// A max_idle_timeout below ours lowers the idle timeout and the keep-alive period.
	if p.MaxIdleTimeout != 0 {
		s.rearmIdleLocked()
		notify(&s.keepAliveWake)
	}
}

func (s *session) handleStreamLocked(f *Frame) {
	if len(f.Data) > MaxStreamPayload {
		s.failLocked(FrameEncodingError, "STREAM payload of %d bytes exceeds %d", len(f.Data), MaxStreamPayload)
		return
	}
	if !s.canRecv(f.StreamID) {
		s.failLocked(StreamStateError, "STREAM frame for send-only stream %d", f.StreamID)
		return
	}
	st, err := s.lookupLocked(f.StreamID, true)
	if err != nil {
		s.closeWithLocked(err)
		return
	}
	n := uint64(len(f.Data))
	if s.framing == QMux00 && s.recvConnOffset+n > s.recvConnMax {
		s.failLocked(FlowControlError, "peer sent %d bytes, connection limit is %d", s.recvConnOffset+n, s.recvConnMax)
		return
	}
	s.recvConnOffset += n
	if st == nil {
		s.consumeConnLocked(n) // data for a stream we no longer track
		return
	}
	if st.finReceived {
		if n > 0 {
			s.failLocked(FinalSizeError, "data on stream %d after its FIN", st.id)
		}
		return
	}
	if st.recvOffset+n > st.recvMax {
		s.failLocked(FlowControlError, "peer sent %d bytes on stream %d, limit is %d", st.recvOffset+n, st.id, st.recvMax)
		return
	}
	st.recvOffset += n
	if st.recvErr != nil {
		st.recvConsumed += n
		s.consumeConnLocked(n) // reading was cancelled: drop it
		return
	}
	if n > 0 {
		st.recvChunks = append(st.recvChunks, append([]byte(nil), f.Data...))
	}
	if f.Fin {
		st.finReceived = true
		s.maybeRetireLocked(st)
	}
	notify(&st.recvWake)
}

// closeWithLocked closes the session with a *TransportError from a lookup.
func (s *session) closeWithLocked(err error) {
	var te *TransportError
	if errors.As(err, &te) {
		s.failLocked(te.Code, "%s", te.Reason)
		return
	}
	s.failLocked(InternalError, "%v", err)
}

func (s *session) handleResetLocked(f *Frame) {
	if !s.canRecv(f.StreamID) {
		s.failLocked(StreamStateError, "RESET_STREAM for send-only stream %d", f.StreamID)
		return
	}
	st, err := s.lookupLocked(f.StreamID, true)
	if err != nil {
		s.closeWithLocked(err)
		return
	}
	if st == nil || st.finReceived || st.recvErr != nil {
		return
	}
	// The final size is not checked: @moq/qmux 0.0.6 always sends 0. (0.3.x sends
	// what it sent, which over the ordered WebSocket is what arrived.)
	st.recvErr = &transport.StreamError{Code: clampCode(f.Code), Remote: true}
	s.dropRecvLocked(st)
	notify(&st.recvWake)
	s.maybeRetireLocked(st)
}

// dropRecvLocked discards unread data of st and returns it to the connection window.
func (s *session) dropRecvLocked(st *stream) {
	unread := st.recvOffset - st.recvConsumed
	st.recvConsumed = st.recvOffset
	clear(st.recvChunks)
	st.recvChunks = nil
	s.consumeConnLocked(unread)
}

func (s *session) handleStopSendingLocked(f *Frame) {
	if !s.canSend(f.StreamID) {
		s.failLocked(StreamStateError, "STOP_SENDING for receive-only stream %d", f.StreamID)
		return
	}
	st, err := s.lookupLocked(f.StreamID, false)
	if err != nil {
		s.closeWithLocked(err)
		return
	}
	if st == nil || st.sendDone() {
		return
	}
	// Answer with RESET_STREAM carrying the same code, as QUIC stacks do.
	s.resetLocked(st, f.Code, &transport.StreamError{Code: clampCode(f.Code), Remote: true})
}

func (s *session) handleMaxStreamDataLocked(f *Frame) {
	if !s.canSend(f.StreamID) {
		s.failLocked(StreamStateError, "MAX_STREAM_DATA for receive-only stream %d", f.StreamID)
		return
	}
	st, err := s.lookupLocked(f.StreamID, false)
	if err != nil {
		s.closeWithLocked(err)
		return
	}
	if st != nil && f.Max > st.sendMax {
		st.sendMax = f.Max
		notify(&s.writerWake)
	}
}

// resetLocked abandons the send side of st with RESET_STREAM; later writes fail with werr.
func (s *session) resetLocked(st *stream, code uint64, werr error) {
	st.sendErr = werr
	st.resetQueued = true
	st.sendBuf, st.sendHead = nil, 0
	s.deactivateLocked(st)
	if !st.opened {
		// Announce the stream first: @moq/qmux ignores RESET_STREAM for a stream it
		// has not seen, and would never return the stream's credit.
		st.opened = true
		s.queueLocked(Frame{Kind: KindStream, StreamID: st.id})
	}
	s.queueLocked(Frame{Kind: KindResetStream, StreamID: st.id, Code: code, FinalSize: st.sendOffset})
	st.sendCancel()
	notify(&st.sendWake)
	s.maybeRetireLocked(st)
}
