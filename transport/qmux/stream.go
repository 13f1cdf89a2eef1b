package qmux

import (
	"context"
	"io"

	"github.com/moqgo/moq/transport"
)

// stream is the state of one stream; all fields are guarded by s.mu.
type stream struct {
	s       *session
	id      uint64
	seq     uint64 // creation order, for scheduling
	local   bool   // opened by us
	hasSend bool
	hasRecv bool

	accepted bool // handed to the application (peer streams)
	retired  bool // forgotten by the session

	// Send side.
	sendBuf     []byte // written, not yet sent: sendBuf[sendHead:]
	sendHead    int
	sendOffset  uint64 // bytes sent
	sendMax     uint64 // peer's limit for sendOffset
	urgency     int
	isActive    bool // listed in s.active
	opened      bool // a frame for it was queued, so the peer knows it
	finQueued   bool // Close was called
	finSent     bool
	resetQueued bool
	sendErr     error // why Write fails, once reset
	sendWake    chan struct{}
	sendCtx     context.Context
	sendCancel  context.CancelFunc

	// Receive side.
	recvChunks          [][]byte
	recvOffset          uint64 // bytes received
	recvConsumed        uint64 // bytes read or dropped
	recvMax             uint64 // our limit for recvOffset
	recvWindow          uint64
	finReceived         bool
	recvErr             error // reset by the peer or cancelled by us
	recvWake            chan struct{}
	maxStreamDataQueued bool
}

func (st *stream) pending() int { return len(st.sendBuf) - st.sendHead }

// sendDone reports that nothing more will be sent on the stream.
func (st *stream) sendDone() bool { return st.finSent || st.resetQueued }

// recvDone reports that the peer will send nothing more the application can read.
func (st *stream) recvDone() bool { return st.finReceived || st.recvErr != nil }

func (st *stream) write(p []byte) (int, error) {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for {
		switch {
		case s.closed:
			return n, s.cause
		case st.sendErr != nil:
			return n, st.sendErr
		case st.finQueued:
			return n, ErrStreamClosed
		case len(p) == 0:
			return n, nil
		}
		if room := sendBufferSize - st.pending(); room > 0 {
			k := min(room, len(p))
			if st.sendHead > 0 && len(st.sendBuf)+k > cap(st.sendBuf) {
				st.sendBuf = st.sendBuf[:copy(st.sendBuf, st.sendBuf[st.sendHead:])]
				st.sendHead = 0
			}
			st.sendBuf = append(st.sendBuf, p[:k]...)
			p = p[k:]
			n += k
			s.activateLocked(st)
			continue
		}
		ch := waitCh(&st.sendWake)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.ctx.Done():
		}
		s.mu.Lock()
	}
}

func (st *stream) close() error {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.finQueued || st.resetQueued || s.closed {
		return nil
	}
	st.finQueued = true
	st.sendCancel()
	s.activateLocked(st)
	return nil
}

func (st *stream) cancelWrite(code uint32) {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || st.sendDone() {
		return
	}
	s.resetLocked(st, uint64(code), &transport.StreamError{Code: code})
}

func (st *stream) setPriority(urgency int) {
	st.s.mu.Lock()
	st.urgency = min(max(urgency, 0), 7)
	st.s.mu.Unlock()
}

func (st *stream) read(p []byte) (int, error) {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if len(st.recvChunks) > 0 {
			n := 0
			for n < len(p) && len(st.recvChunks) > 0 {
				c := st.recvChunks[0]
				k := copy(p[n:], c)
				n += k
				if k == len(c) {
					st.recvChunks[0] = nil
					st.recvChunks = st.recvChunks[1:]
				} else {
					st.recvChunks[0] = c[k:]
				}
			}
			s.consumeStreamLocked(st, uint64(n))
			return n, nil
		}
		switch {
		case st.recvErr != nil:
			return 0, st.recvErr
		case st.finReceived:
			return 0, io.EOF
		case s.closed:
			return 0, s.cause
		case len(p) == 0:
			return 0, nil
		}
		ch := waitCh(&st.recvWake)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.ctx.Done():
		}
		s.mu.Lock()
	}
}

func (st *stream) cancelRead(code uint32) {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || st.recvErr != nil || (st.finReceived && len(st.recvChunks) == 0) {
		return
	}
	st.recvErr = &transport.StreamError{Code: code}
	if !st.finReceived {
		s.queueLocked(Frame{Kind: KindStopSending, StreamID: st.id, Code: uint64(code)})
	}
	s.dropRecvLocked(st)
	notify(&st.recvWake)
	s.maybeRetireLocked(st)
}

// sendStream is the sending half handed to the application.
type sendStream struct{ st *stream }

var _ transport.SendStream = sendStream{}

func (w sendStream) Write(p []byte) (int, error) { return w.st.write(p) }
func (w sendStream) Close() error                { return w.st.close() }
func (w sendStream) CancelWrite(code uint32)     { w.st.cancelWrite(code) }
func (w sendStream) SetPriority(urgency int)     { w.st.setPriority(urgency) }
func (w sendStream) Context() context.Context    { return w.st.sendCtx }

// receiveStream is the receiving half handed to the application.
type receiveStream struct{ st *stream }

var _ transport.ReceiveStream = receiveStream{}

func (r receiveStream) Read(p []byte) (int, error) { return r.st.read(p) }
func (r receiveStream) CancelRead(code uint32)     { r.st.cancelRead(code) }

// bidiStream is a bidirectional stream.
type bidiStream struct {
	sendStream
	receiveStream
}

var _ transport.Stream = bidiStream{}
