package qmux

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// vectorBytes returns the bytes of the named vector of a vector file.
func vectorBytes(tb testing.TB, vf *vectorFile, name string) []byte {
	tb.Helper()
	for _, v := range vf.Vectors {
		if v.Name == name {
			return v.bytes(tb)
		}
	}
	tb.Fatalf("no vector %q", name)
	return nil
}

// peerKinds are the two @moq/qmux releases a qmux-00 peer can be, each with the
// transport parameters it sends first (from its session trace) and the
// APPLICATION_CLOSE (0, "bye") it writes.
var peerKinds = []struct {
	name       string
	layout     Layout
	file       string
	params     string // vector of its first frame
	closeBye   string // vector of its APPLICATION_CLOSE (0, "bye")
	closeCode  string // vector of an APPLICATION_CLOSE with a nonzero code
	connection string // vector of a CONNECTION_CLOSE (0x1c) on qmux-00
}{
	{"0.0.6", Layout006, "qmux.json", "session_trace_00", "session_trace_07", "qmux_application_close_reason", "qmux_transport_close_0x1c_decode_only"},
	{"0.3.3", Layout03, "qmux-new.json", "session_qmux00_00", "session_qmux00_03", "application_close_reason", "connection_close_reason"},
}

// TestPeerLayout checks the detection rule on the transport parameters each
// release sends.
func TestPeerLayout(t *testing.T) {
	for _, pk := range peerKinds {
		b := vectorBytes(t, loadVectorFile(t, pk.file), pk.params)
		f, _, err := ParseFrame(b, QMux00)
		if err != nil || f.Kind != KindTransportParameters {
			t.Fatalf("%s: %v, %v", pk.params, f.Kind, err)
		}
		if got := peerLayout(&f.Params); got != pk.layout {
			t.Errorf("%s parameters: layout %v, want %v", pk.name, got, pk.layout)
		}
	}
	if got := peerLayout(&defaultTransportParams); got != Layout006 {
		t.Errorf("our own parameters: layout %v, want %v", got, Layout006)
	}
}

// TestApplicationCloseLayouts checks how a qmux-00 APPLICATION_CLOSE is read:
// in the expected layout if that reading uses the whole message, else in the
// other if that one does, else in the first that parses.
func TestApplicationCloseLayouts(t *testing.T) {
	tests := []struct {
		name, hex string
		// Per expected layout (Layout006, Layout03): the reason read and the
		// bytes used; the code is always 7.
		reason [2]string
		used   [2]int
	}{
		{"0.0.6 layout", "1d07" + "00" + "03627965", [2]string{"bye", "bye"}, [2]int{7, 7}},
		{"RFC 9000 layout", "1d07" + "03627965", [2]string{"bye", "bye"}, [2]int{6, 6}},
		{"0.0.6 layout, empty reason", "1d07" + "00" + "00", [2]string{"", ""}, [2]int{4, 4}},
		{"RFC 9000 layout, empty reason", "1d07" + "00", [2]string{"", ""}, [2]int{3, 3}},
		// Both readings use every byte: the expected layout decides.
		{"ambiguous", "1d07" + "01" + "00", [2]string{"", "\x00"}, [2]int{4, 4}},
		{"ambiguous, longer", "1d07" + "04" + "03616263", [2]string{"abc", "\x03abc"}, [2]int{7, 7}},
		// Neither uses every byte: the first reading that parses, expected first.
		{"RFC 9000 layout, trailing byte", "1d07" + "03627965" + "ff", [2]string{"bye", "bye"}, [2]int{6, 6}},
		{"0.0.6 layout, trailing byte", "1d07" + "00" + "03627965" + "ff", [2]string{"bye", ""}, [2]int{7, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			for i, layout := range []Layout{Layout006, Layout03} {
				f, n, err := ParseFrameLayout(b, QMux00, layout)
				if err != nil {
					t.Fatalf("expecting %v: %v", layout, err)
				}
				if f.Kind != KindApplicationClose || f.Code != 7 || f.Reason != tt.reason[i] || n != tt.used[i] {
					t.Errorf("expecting %v: %v code %d reason %q using %d bytes; want code 7 reason %q using %d",
						layout, f.Kind, f.Code, f.Reason, n, tt.reason[i], tt.used[i])
				}
			}
			if f, _, err := ParseFrame(b, QMux00); err != nil || f.Reason != tt.reason[0] {
				t.Errorf("ParseFrame: %q, %v; want the Layout006 reading %q", f.Reason, err, tt.reason[0])
			}
		})
	}
	// Neither reading parses.
	for _, h := range []string{"1d", "1d07", "1d0705", "1d07400561"} {
		b, _ := hex.DecodeString(h)
		for _, layout := range []Layout{Layout006, Layout03} {
			if _, _, err := ParseFrameLayout(b, QMux00, layout); !errors.Is(err, FrameEncodingError) {
				t.Errorf("%s expecting %v: err = %v, want FrameEncodingError", h, layout, err)
			}
		}
	}
}

// parseRFC9000Close decodes APPLICATION_CLOSE the way @moq/qmux 0.3.3 does on
// qmux-00 (type, code, reason length, reason; anything after is ignored),
// independently of this package's decoder.
func parseRFC9000Close(msg []byte) (code uint64, reason string, err error) {
	var vals [3]uint64
	for i := range vals {
		v, n, err := wire.ParseVarint(msg)
		if err != nil {
			return 0, "", err
		}
		vals[i], msg = v, msg[n:]
	}
	if vals[0] != typeApplicationClose {
		return 0, "", fmt.Errorf("frame type 0x%x", vals[0])
	}
	if vals[2] > uint64(len(msg)) {
		return 0, "", fmt.Errorf("reason of %d bytes, %d left", vals[2], len(msg))
	}
	return vals[1], string(msg[:vals[2]]), nil
}

// connectPeer connects a raw qmux-00 peer of the given kind to a session, in
// either role, exchanges transport parameters, and waits until the session has
// applied the peer's (an open stream needs them).
func connectPeer(t *testing.T, server bool, layout Layout, params []byte) (*rawPeer, *session) {
	t.Helper()
	var p *rawPeer
	var s *session
	if server {
		p, s = rawPair(t, newTestServer(t, []string{"moq-lite-04"}), loadVectors03(t).Negotiation.MoqNetConnectOffer.Protocols...)
	} else {
		url, peers := rawServer(t, SubprotocolQMux00)
		s = dialTest(t, url, Offer(nil))
		p = nextRaw(t, peers)
	}
	p.layout = layout
	if s.framing != QMux00 {
		t.Fatalf("framing %v, want qmux-00", s.framing)
	}
	if f := p.expect(KindTransportParameters); f.Params != defaultTransportParams {
		t.Fatalf("session parameters %+v", f.Params)
	}
	if params != nil {
		p.sendRaw(params)
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		if _, err := s.OpenUniStream(ctx); err != nil {
			t.Fatalf("no stream credit after the peer's parameters: %v", err)
		}
	}
	s.mu.Lock()
	got := s.layout
	s.mu.Unlock()
	if got != layout {
		t.Fatalf("session layout %v, want %v", got, layout)
	}
	return p, s
}

// TestCloseToPeer checks that our close code and reason reach the peer in the
// layout it reads: byte for byte what that release writes itself. A peer whose
// parameters have not arrived gets the 0.0.6 layout.
func TestCloseToPeer(t *testing.T) {
	for _, pk := range peerKinds {
		vf := loadVectorFile(t, pk.file)
		for _, server := range []bool{true, false} {
			for _, tc := range []struct {
				code   uint32
				reason string
				vector string
			}{{0, "bye", pk.closeBye}, {1002, "Protocol violation", pk.closeCode}} {
				t.Run(fmt.Sprintf("%s/server=%t/code=%d", pk.name, server, tc.code), func(t *testing.T) {
					p, s := connectPeer(t, server, pk.layout, vectorBytes(t, vf, pk.params))
					closed := async(func() error { return s.CloseWithError(tc.code, tc.reason) })
					ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
					defer cancel()
					var msg []byte
					for {
						typ, b, err := p.conn.Read(ctx)
						if err != nil {
							t.Fatalf("no close frame: %v", err)
						}
						if typ == websocket.MessageBinary && b[0] == typeApplicationClose {
							msg = b
							break
						}
					}
					if want := vectorBytes(t, vf, tc.vector); !bytes.Equal(msg, want) {
						t.Fatalf("close frame %x, want %x as @moq/qmux %s writes it", msg, want, pk.name)
					}
					if pk.layout == Layout03 {
						code, reason, err := parseRFC9000Close(msg)
						if err != nil || code != uint64(tc.code) || reason != tc.reason {
							t.Fatalf("0.3.3 decodes %d %q, %v; want %d %q", code, reason, err, tc.code, tc.reason)
						}
					}
					if _, _, err := p.conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
						t.Fatalf("after the close frame: %v, want a normal WebSocket closure", err)
					}
					if err := await(t, closed, "CloseWithError"); err != nil {
						t.Fatal(err)
					}
					wantSessionError(t, context.Cause(s.Context()), tc.code, tc.reason, false)
				})
			}
		}
	}
	t.Run("parameters not received", func(t *testing.T) {
		p, s := connectPeer(t, true, Layout006, nil)
		closed := async(func() error { return s.CloseWithError(0, "bye") })
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		_, msg, err := p.conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := vectorBytes(t, loadVectors(t), "session_trace_07"); !bytes.Equal(msg, want) {
			t.Fatalf("close frame %x, want the 0.0.6 layout %x", msg, want)
		}
		if _, _, err := p.conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Fatalf("after the close frame: %v, want a normal WebSocket closure", err)
		}
		if err := await(t, closed, "CloseWithError"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPeerCloses checks a session against a peer that closes with its
// APPLICATION_CLOSE: the session ends cleanly with the peer's code and reason
// (no frame encoding error, no CONNECTION_CLOSE back), and every stream fails
// with that *transport.SessionError, which the layers above take as the
// session having been stopped, rather than with a transport error, which
// they take as an abort.
func TestPeerCloses(t *testing.T) {
	for _, pk := range peerKinds {
		vf := loadVectorFile(t, pk.file)
		for _, tc := range []struct {
			vector string
			code   uint32
			reason string
		}{{pk.closeBye, 0, "bye"}, {pk.closeCode, 1002, "Protocol violation"}} {
			t.Run(pk.name+"/"+tc.vector, func(t *testing.T) {
				p, s := connectPeer(t, true, pk.layout, vectorBytes(t, vf, pk.params))
				// The peer's stream: "hi" and FIN.
				p.send(Frame{Kind: KindStream, StreamID: 0, Data: []byte("hi")})
				p.send(Frame{Kind: KindStream, StreamID: 0, Offset: 2, Fin: true})
				in, err := s.AcceptStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if b, err := io.ReadAll(in); err != nil || string(b) != "hi" {
					t.Fatalf("peer stream: %q, %v", b, err)
				}
				// Our streams: one waiting to read, one to write.
				bidi, err := s.OpenStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := bidi.Write([]byte("?")); err != nil {
					t.Fatal(err)
				}
				p.expect(KindStream)
				reading := async(func() error { _, err := bidi.Read(make([]byte, 1)); return err })
				uni, err := s.OpenUniStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}

				p.sendRaw(vectorBytes(t, vf, tc.vector))

				cause := waitClosed(t, s.Context())
				wantSessionError(t, cause, tc.code, tc.reason, true)
				if _, ok := errors.AsType[*TransportError](cause); ok {
					t.Fatalf("cause %v is a transport error", cause)
				}
				wantSessionError(t, await(t, reading, "read"), tc.code, tc.reason, true)
				_, err = uni.Write([]byte("late"))
				wantSessionError(t, err, tc.code, tc.reason, true)
				select {
				case <-uni.Context().Done():
				case <-time.After(testTimeout):
					t.Fatal("send side not cancelled")
				}
				// No close frame comes back, only the WebSocket close handshake.
				for {
					f, err := p.recv()
					if err != nil {
						if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
							t.Fatalf("connection ended with %v, want a normal WebSocket closure", err)
						}
						break
					}
					if f.Kind == KindConnectionClose || f.Kind == KindApplicationClose {
						t.Fatalf("session answered the close with %+v", f)
					}
				}
			})
		}
	}
}

// TestPeerConnectionClose checks CONNECTION_CLOSE (0x1c) from the peer, in
// qmux-00 from either release and in the legacy framing as 0.3.3 writes it:
// the session ends with a remote *TransportError carrying the peer's code and
// reason, not with a clean close, and its streams fail with it.
func TestPeerConnectionClose(t *testing.T) {
	type closeCase struct {
		name   string
		sub    string
		params []byte
		layout Layout
		msg    []byte
		code   TransportErrorCode
		reason string
	}
	var cases []closeCase
	for _, pk := range peerKinds {
		vf := loadVectorFile(t, pk.file)
		c := closeCase{name: pk.name, sub: SubprotocolQMux00, params: vectorBytes(t, vf, pk.params), layout: pk.layout,
			msg: vectorBytes(t, vf, pk.connection), code: ProtocolViolation, reason: "oops"}
		if pk.layout == Layout03 {
			c.code, c.reason = 1002, "Protocol violation"
		}
		cases = append(cases, c)
	}
	vf03 := loadVectors03(t)
	legacy, err := AppendFrameLayout(nil, &Frame{Kind: KindConnectionClose, Code: 1002, Reason: "Protocol violation"}, WebTransport, Layout03)
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases,
		closeCase{name: "legacy empty", sub: SubprotocolWebTransport, msg: vectorBytes(t, vf03, "wt_connection_close"), code: NoError},
		closeCase{name: "legacy reason", sub: SubprotocolWebTransport, msg: legacy, code: 1002, reason: "Protocol violation"})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, s := rawPair(t, newTestServer(t, nil), tc.sub)
			p.layout = tc.layout
			if tc.params != nil {
				p.expect(KindTransportParameters)
				p.sendRaw(tc.params)
			}
			p.send(Frame{Kind: KindStream, StreamID: 0, Data: []byte("x")})
			in, err := s.AcceptStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := in.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			reading := async(func() error { _, err := in.Read(make([]byte, 1)); return err })

			p.sendRaw(tc.msg)

			cause := waitClosed(t, s.Context())
			for _, err := range []error{cause, await(t, reading, "read")} {
				te, ok := errors.AsType[*TransportError](err)
				if !ok || te.Code != tc.code || te.Reason != tc.reason || !te.Remote || !errors.Is(err, tc.code) {
					t.Fatalf("error %v, want a remote TransportError %v with reason %q", err, tc.code, tc.reason)
				}
				if _, ok := errors.AsType[*transport.SessionError](err); ok {
					t.Fatalf("error %v is a clean close", err)
				}
			}
			for {
				f, err := p.recv()
				if err != nil {
					break
				}
				if f.Kind == KindConnectionClose || f.Kind == KindApplicationClose {
					t.Fatalf("session answered the close with %+v", f)
				}
			}
		})
	}
}

// TestStreamFramesByLayout checks STREAM frames on the wire: without an offset
// (0x0a/0x0b) to a 0.0.6 peer, as before, and with OFF and the real offset
// (0x0e/0x0f) to a 0.3.3 peer, as that release writes them.
func TestStreamFramesByLayout(t *testing.T) {
	for _, pk := range peerKinds {
		t.Run(pk.name, func(t *testing.T) {
			p, s := connectPeer(t, true, pk.layout, vectorBytes(t, loadVectorFile(t, pk.file), pk.params))
			typ := func(fin bool) uint64 {
				t := uint64(typeStream | typeStreamLen)
				if pk.layout == Layout03 {
					t |= typeStreamOff
				}
				if fin {
					t |= typeStreamFin
				}
				return t
			}
			offset := func(o uint64) uint64 {
				if pk.layout == Layout03 {
					return o
				}
				return 0
			}
			// connectPeer opened uni stream 3 and sent nothing on it.
			out, err := s.OpenUniStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []struct {
				data string
				off  uint64
			}{{"abc", 0}, {"defg", 3}} {
				if _, err := out.Write([]byte(w.data)); err != nil {
					t.Fatal(err)
				}
				f := p.expect(KindStream)
				if f.Type != typ(false) || f.StreamID != 7 || f.Offset != offset(w.off) || string(f.Data) != w.data {
					t.Fatalf("frame %+v, want type 0x%x, offset %d, %q", f, typ(false), offset(w.off), w.data)
				}
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
			if f := p.expect(KindStream); f.Type != typ(true) || f.Offset != offset(7) || len(f.Data) != 0 {
				t.Fatalf("FIN frame %+v, want type 0x%x, offset %d", f, typ(true), offset(7))
			}
			// A stream reset before it carried anything is announced at offset 0.
			reset, err := s.OpenUniStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			reset.CancelWrite(5)
			if f := p.expect(KindStream); f.Type != typ(false) || f.StreamID != 11 || f.Offset != 0 || len(f.Data) != 0 {
				t.Fatalf("announcement %+v", f)
			}
			if f := p.expect(KindResetStream); f.StreamID != 11 || f.Code != 5 || f.FinalSize != 0 {
				t.Fatalf("reset %+v", f)
			}
		})
	}
}
