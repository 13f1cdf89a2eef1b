package qmux

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// seedFrames adds every vector of the framing as a seed.
func seedFrames(f *testing.F, framing Framing) {
	for _, v := range loadVectors(f).Vectors {
		if v.Message != "stream_id" && v.framing(f) == framing {
			f.Add(v.bytes(f))
		}
	}
}

// checkParse asserts the decoder contract on arbitrary input: an error wrapping
// FrameEncodingError, or a frame that re-encodes to bytes decoding the same way.
func checkParse(t *testing.T, framing Framing, p []byte) {
	f, n, err := ParseFrame(p, framing)
	if err != nil {
		if !errors.Is(err, FrameEncodingError) {
			t.Fatalf("error %v does not wrap FrameEncodingError", err)
		}
		return
	}
	if n <= 0 || n > len(p) {
		t.Fatalf("consumed %d of %d bytes", n, len(p))
	}
	if f.Kind == KindIgnored {
		return
	}
	b, err := AppendFrame(nil, &f, framing)
	if err != nil {
		t.Fatalf("decoded %+v does not encode: %v", f, err)
	}
	g, m, err := ParseFrame(b, framing)
	if err != nil || m != len(b) {
		t.Fatalf("re-encoded %x: %v (consumed %d of %d)", b, err, m, len(b))
	}
	f.Type, g.Type = 0, 0 // STREAM forms without LEN or with OFF re-encode as LEN
	if !sameFrame(f, g) {
		t.Fatalf("round trip changed %+v into %+v", f, g)
	}
}

func FuzzParseQMux(f *testing.F) {
	seedFrames(f, QMux00)
	f.Fuzz(func(t *testing.T, p []byte) { checkParse(t, QMux00, p) })
}

func FuzzParseWebTransport(f *testing.F) {
	seedFrames(f, WebTransport)
	f.Fuzz(func(t *testing.T, p []byte) { checkParse(t, WebTransport, p) })
}

// Operations of FuzzSession, chosen by op%8 for each op byte of the input.
const (
	opMessage = iota // a length byte and that many bytes: one WebSocket message
	opAccept         // accept a pending stream, bidi or uni by op>>3&1
	opRead           // read from a stream with something to return
	opWrite          // write op>>3 bytes to a stream with buffer room
	opClose          // Close the send side of a stream
	opCancel         // CancelWrite or CancelRead (op>>3&1) with code op>>4
	opOpen           // open a stream when credit allows, bidi or uni by op>>3&1
	opDrain          // send up to op>>3 frames
)

// fuzzMessage encodes one frame as an opMessage.
func fuzzMessage(tb testing.TB, framing Framing, f Frame) []byte {
	b, err := AppendFrame(nil, &f, framing)
	if err != nil || len(b) > 255 {
		tb.Fatalf("seed frame %v: %v (%d bytes)", f.Kind, err, len(b))
	}
	return append([]byte{opMessage, byte(len(b))}, b...)
}

// FuzzSession feeds arbitrary frames and application calls to a session's
// state machine (no WebSocket): it must never panic, break its flow-control
// bounds or emit a frame it could not decode itself.
func FuzzSession(f *testing.F) {
	for _, setup := range []byte{0, 1, 2, 3} {
		framing := QMux00
		if setup&1 != 0 {
			framing = WebTransport
		}
		var in []byte
		in = append(in, setup)
		if framing == QMux00 {
			in = append(in, fuzzMessage(f, framing, Frame{Kind: KindTransportParameters, Params: defaultTransportParams})...)
		}
		for _, v := range loadVectors(f).Vectors {
			if (strings.HasPrefix(v.Name, "session_trace_") || strings.HasPrefix(v.Name, "lite_connect_ws_")) &&
				v.framing(f) == framing && v.Message != "transport_parameters" && v.Message != "connection_close" {
				b := v.bytes(f)
				in = append(append(in, opMessage, byte(len(b))), b...)
				in = append(in, opAccept, opAccept|8, opRead, opDrain|8<<3)
			}
		}
		in = append(in, opOpen, opOpen|8, opWrite|5<<3, opClose, opCancel|3<<4, opDrain|31<<3)
		in = append(in, fuzzMessage(f, framing, Frame{Kind: KindStopSending, StreamID: 1, Code: 5})...)
		in = append(in, fuzzMessage(f, framing, Frame{Kind: KindApplicationClose, Code: 1, Reason: "bye"})...)
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		framing := QMux00
		if in[0]&1 != 0 {
			framing = WebTransport
		}
		s := newSessionState(framing, "", in[0]&2 != 0)
		defer func() {
			s.mu.Lock()
			if s.abortTimer != nil {
				s.abortTimer.Stop()
			}
			s.mu.Unlock()
			s.cancel(nil)
		}()
		cancelled, cancel := context.WithCancel(context.Background())
		cancel() // opens and accepts must not block
		var streams []*stream
		pick := func(op byte) *stream {
			if len(streams) == 0 {
				return nil
			}
			return streams[int(op>>3)%len(streams)]
		}
		buf := make([]byte, 256)
		for i := 1; i < len(in); i++ {
			op := in[i]
			switch op % 8 {
			case opMessage:
				if i+1 >= len(in) {
					return
				}
				n := int(in[i+1])
				msg := in[i+2 : min(i+2+n, len(in))]
				i += 1 + len(msg)
				s.mu.Lock()
				paused := framing != QMux00 && s.recvConnOffset-s.recvConnConsumed >= legacyRecvBuffer
				s.mu.Unlock()
				if !paused { // the reader stops reading while the application lags
					s.handleMessage(msg)
				}
			case opAccept:
				if st, err := s.accept(cancelled, int(op>>3)&1); err == nil {
					streams = append(streams, st)
				}
			case opRead:
				if st := pick(op); st != nil && st.hasRecv {
					s.mu.Lock()
					ready := len(st.recvChunks) > 0 || st.recvDone() || s.closed
					s.mu.Unlock()
					if ready {
						_, _ = st.read(buf[:1+int(op>>3)])
					}
				}
			case opWrite:
				if st := pick(op); st != nil && st.hasSend {
					n := int(op >> 3)
					s.mu.Lock()
					room := st.pending()+n <= sendBufferSize
					s.mu.Unlock()
					if room {
						_, _ = st.write(buf[:n])
					}
				}
			case opClose:
				if st := pick(op); st != nil && st.hasSend {
					_ = st.close()
				}
			case opCancel:
				if st := pick(op); st != nil {
					if op>>3&1 == 0 && st.hasSend {
						st.cancelWrite(uint32(op >> 4))
					} else if st.hasRecv {
						st.cancelRead(uint32(op >> 4))
					}
				}
			case opOpen:
				if st, err := s.open(cancelled, int(op>>3)&1); err == nil {
					streams = append(streams, st)
				}
			case opDrain:
				for range int(op >> 3) {
					s.mu.Lock()
					b := s.nextFrameLocked(nil)
					s.mu.Unlock()
					if b == nil {
						break
					}
					fr, n, err := ParseFrame(b, framing)
					if err != nil || n != len(b) {
						t.Fatalf("session emitted %x: %v", b, err)
					}
					if fr.Kind == KindStream && len(fr.Data) > MaxStreamPayload {
						t.Fatalf("STREAM payload of %d bytes", len(fr.Data))
					}
				}
			}
			checkInvariants(t, s)
		}
	})
}

// checkInvariants asserts the bounds flow control promises.
func checkInvariants(t *testing.T, s *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.framing == QMux00 && s.recvConnOffset > s.recvConnMax {
		t.Fatalf("received %d bytes, connection limit %d", s.recvConnOffset, s.recvConnMax)
	}
	bound := uint64(legacyRecvBuffer + readLimit)
	if s.framing == QMux00 {
		bound = s.params.InitialMaxData
	}
	if s.recvConnOffset-s.recvConnConsumed > bound {
		t.Fatalf("%d unread bytes buffered", s.recvConnOffset-s.recvConnConsumed)
	}
	if s.sendConnUsed > s.sendConnMax {
		t.Fatalf("sent %d bytes, peer allows %d", s.sendConnUsed, s.sendConnMax)
	}
	for id, st := range s.streams {
		if st.id != id {
			t.Fatalf("stream %d filed under %d", st.id, id)
		}
		if st.hasSend && st.sendOffset > st.sendMax {
			t.Fatalf("stream %d: sent %d, peer allows %d", id, st.sendOffset, st.sendMax)
		}
		if st.hasRecv {
			if st.recvOffset > st.recvMax {
				t.Fatalf("stream %d: received %d, limit %d", id, st.recvOffset, st.recvMax)
			}
			unread := 0
			for _, c := range st.recvChunks {
				unread += len(c)
			}
			if uint64(unread) != st.recvOffset-st.recvConsumed {
				t.Fatalf("stream %d: %d bytes buffered, accounting says %d", id, unread, st.recvOffset-st.recvConsumed)
			}
		}
	}
	if live := uint64(len(s.streams)); live > s.nextLocal[bidi]+s.nextLocal[uni]+s.ourMaxStreams[bidi]+s.ourMaxStreams[uni] {
		t.Fatalf("%d streams tracked", live)
	}
}
