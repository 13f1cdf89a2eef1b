package qmux

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

// seedFrames adds every vector of the framing, from @moq/qmux 0.0.6 and 0.3.3,
// as a seed.
func seedFrames(f *testing.F, framing Framing) {
	for _, file := range vectorFiles {
		for _, v := range loadVectorFile(f, file.name).Vectors {
			if v.Message != "stream_id" && slices.Contains(v.framings(f), framing) {
				f.Add(v.bytes(f))
			}
		}
	}
}

// checkParse asserts the decoder contract on arbitrary input, for a peer of
// either layout: an error wrapping FrameEncodingError, or a frame that
// re-encodes in that layout to bytes decoding the same way.
func checkParse(t *testing.T, framing Framing, p []byte) {
	for _, layout := range []Layout{Layout006, Layout03} {
		f, n, err := ParseFrameLayout(p, framing, layout)
		if err != nil {
			if !errors.Is(err, FrameEncodingError) {
				t.Fatalf("%v: error %v does not wrap FrameEncodingError", layout, err)
			}
			continue
		}
		if n <= 0 || n > len(p) {
			t.Fatalf("%v: consumed %d of %d bytes", layout, n, len(p))
		}
		if f.Kind == KindIgnored {
			continue
		}
		b, err := AppendFrameLayout(nil, &f, framing, layout)
		if errors.Is(err, ErrUnsupportedFrame) && framing == WebTransport && f.Kind == KindConnectionClose && layout == Layout006 {
			continue // 0.0.6 has no CONNECTION_CLOSE in the legacy framing
		}
		if err != nil {
			t.Fatalf("%v: decoded %+v does not encode: %v", layout, f, err)
		}
		g, m, err := ParseFrameLayout(b, framing, layout)
		if err != nil || m != len(b) {
			t.Fatalf("%v: re-encoded %x: %v (consumed %d of %d)", layout, b, err, m, len(b))
		}
		f.Type, g.Type = 0, 0 // STREAM forms re-encode as LEN, or OFF|LEN in Layout03
		if layout == Layout006 {
			f.Offset = 0 // not written in this layout
		}
		if !sameFrame(f, g) {
			t.Fatalf("%v: round trip changed %+v into %+v", layout, f, g)
		}
	}
}

func FuzzParseQMux(f *testing.F) {
	seedFrames(f, QMux00)
	// APPLICATION_CLOSE messages that both layouts read in full, differently:
	// the reason of the RFC 9000 reading starts with a varint length and that
	// many bytes.
	for _, h := range []string{"1d0001" + "00", "1d07" + "04" + "03616263", "1d00" + "4005" + "4003616263"} {
		b, err := hex.DecodeString(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
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
func fuzzMessage(tb testing.TB, framing Framing, layout Layout, f Frame) []byte {
	b, err := AppendFrameLayout(nil, &f, framing, layout)
	if err != nil || len(b) > 255 {
		tb.Fatalf("seed frame %v: %v (%d bytes)", f.Kind, err, len(b))
	}
	return append([]byte{opMessage, byte(len(b))}, b...)
}

// FuzzSession feeds arbitrary frames and application calls to a session's
// state machine (no WebSocket): it must never panic, break its flow-control
// bounds or emit a frame it could not decode itself.
func FuzzSession(f *testing.F) {
	// Setup bit 0 picks the legacy framing and bit 1 the server role; seeds
	// with bit 2 replay @moq/qmux 0.3.3 instead of 0.0.6 (the parameters say
	// which, so the target ignores the bit).
	for _, setup := range []byte{0, 1, 2, 3, 4, 5, 6, 7} {
		framing := QMux00
		if setup&1 != 0 {
			framing = WebTransport
		}
		layout, vectors, prefixes := Layout006, loadVectors(f).Vectors, []string{"session_trace_", "lite_connect_ws_"}
		if setup&4 != 0 {
			layout, vectors, prefixes = Layout03, loadVectors03(f).Vectors, []string{"session_qmux00_", "session_webtransport_"}
		}
		var in []byte
		in = append(in, setup)
		for _, v := range vectors {
			if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(v.Name, p) }) ||
				!slices.Contains(v.framings(f), framing) || strings.HasSuffix(v.Message, "_close") {
				continue
			}
			b := v.bytes(f)
			if len(b) > 255 {
				f.Fatalf("%s: %d bytes do not fit an opMessage", v.Name, len(b))
			}
			in = append(append(in, opMessage, byte(len(b))), b...)
			if v.Message == "transport_parameters" {
				continue
			}
			in = append(in, opAccept, opAccept|8, opRead, opDrain|8<<3)
		}
		if framing == QMux00 && !bytes.Contains(in, []byte{0xff, 'Q', 'S', '0'}) {
			in = append(in[:1], append(fuzzMessage(f, framing, layout, Frame{Kind: KindTransportParameters, Params: defaultTransportParams}), in[1:]...)...)
		}
		in = append(in, opOpen, opOpen|8, opWrite|5<<3, opClose, opCancel|3<<4, opDrain|31<<3)
		in = append(in, fuzzMessage(f, framing, layout, Frame{Kind: KindStopSending, StreamID: 1, Code: 5})...)
		in = append(in, fuzzMessage(f, framing, layout, Frame{Kind: KindApplicationClose, Code: 1, Reason: "bye"})...)
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
					layout := s.layout
					s.mu.Unlock()
					if b == nil {
						break
					}
					fr, n, err := ParseFrameLayout(b, framing, layout)
					if err != nil || n != len(b) {
						t.Fatalf("session emitted %x: %v", b, err)
					}
					if fr.Kind == KindStream && len(fr.Data) > MaxStreamPayload {
						t.Fatalf("STREAM payload of %d bytes", len(fr.Data))
					}
					if fr.Kind == KindStream && layout == Layout03 && fr.Type&typeStreamOff == 0 {
						t.Fatalf("STREAM frame %x without an offset to a 0.3 peer", b)
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
