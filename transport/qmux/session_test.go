package qmux

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/moqgo/moq/transport"
)

func TestSelect(t *testing.T) {
	lite := Offer(nil)
	full := Offer([]string{"moq-lite-04", "moq-lite-03", "moql"})
	tests := []struct {
		name      string
		offered   []string
		protocols []string
		want      string
		framing   Framing
		protocol  string
	}{
		{"lite client, no server protocols", lite, nil, "qmux-00", QMux00, ""},
		{"lite client, server protocols", lite, []string{"moq-lite-03"}, "qmux-00", QMux00, ""},
		{"server preference wins", full, []string{"moql", "moq-lite-04"}, "qmux-00.moql", QMux00, "moql"},
		{"first common protocol", full, []string{"moqt-17", "moq-lite-03"}, "qmux-00.moq-lite-03", QMux00, "moq-lite-03"},
		{"no common protocol", full, []string{"moqt-17"}, "qmux-00", QMux00, ""},
		{"legacy only", []string{"webtransport", "webtransport.moql"}, []string{"moql"}, "webtransport.moql", WebTransport, "moql"},
		{"legacy bare", []string{"webtransport"}, []string{"moql"}, "webtransport", WebTransport, ""},
		{"qmux with protocol only", []string{"qmux-00.moql"}, []string{"moql"}, "qmux-00.moql", QMux00, "moql"},
		{"nothing offered", nil, []string{"moql"}, "", WebTransport, ""},
		{"unknown offers", []string{"chat", "superchat"}, []string{"moql"}, "", WebTransport, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Select(tt.offered, tt.protocols)
			if got != tt.want {
				t.Fatalf("Select = %q, want %q", got, tt.want)
			}
			framing, proto := ParseSubprotocol(got)
			if framing != tt.framing || proto != tt.protocol {
				t.Fatalf("ParseSubprotocol(%q) = %v, %q; want %v, %q", got, framing, proto, tt.framing, tt.protocol)
			}
		})
	}
	// The same table over real WebSocket handshakes.
	for _, tt := range tests {
		t.Run("handshake/"+tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.protocols)
			c := dialTest(t, srv.URL, tt.offered)
			s := srv.next(t)
			if c.conn.Subprotocol() != tt.want {
				t.Errorf("negotiated subprotocol %q, want %q", c.conn.Subprotocol(), tt.want)
			}
			for _, sess := range []*session{c, s} {
				if sess.framing != tt.framing || sess.Protocol() != tt.protocol {
					t.Errorf("isServer=%t: framing %v protocol %q; want %v %q", sess.isServer, sess.framing, sess.Protocol(), tt.framing, tt.protocol)
				}
			}
		})
	}
}

func TestOffered(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    bool
	}{
		{"websocket", "GET", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, true},
		{"token list and case", "GET", map[string]string{"Connection": "keep-alive, upgrade", "Upgrade": "WebSocket"}, true},
		{"plain GET", "GET", nil, false},
		{"no Upgrade header", "GET", map[string]string{"Connection": "Upgrade"}, false},
		{"other upgrade", "GET", map[string]string{"Connection": "Upgrade", "Upgrade": "h2c"}, false},
		{"POST", "POST", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/anon", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if got := Offered(r); got != tt.want {
				t.Fatalf("Offered = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestDial(t *testing.T) {
	ts := newTestServer(t, []string{"moql", "moq-lite-03"})
	t.Run("protocol", func(t *testing.T) {
		c, err := Dial(t.Context(), ts.URL+"/some/path?jwt=x", []string{"moq-lite-04", "moql"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseWithError(0, "")
		s := ts.next(t)
		if c.Protocol() != "moql" || s.Protocol() != "moql" || s.framing != QMux00 {
			t.Fatalf("protocols %q / %q, framing %v; want moql over qmux-00", c.Protocol(), s.Protocol(), s.framing)
		}
		for _, a := range []net.Addr{c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr()} {
			if _, ok := a.(*net.TCPAddr); !ok {
				t.Errorf("address %v is %T, want *net.TCPAddr", a, a)
			}
		}
		if c.LocalAddr().String() != s.RemoteAddr().String() || c.RemoteAddr().String() != s.LocalAddr().String() {
			t.Errorf("client %v->%v, server %v<-%v", c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr())
		}
	})
	t.Run("ws scheme and cancelled dial context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		c, err := Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil, nil)
		cancel() // only the handshake depends on it
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseWithError(0, "")
		s := ts.next(t)
		echoOnce(t, c, s)
	})
	t.Run("bad scheme", func(t *testing.T) {
		if _, err := Dial(t.Context(), "moqt://127.0.0.1:1/", nil, nil); err == nil {
			t.Fatal("Dial with moqt:// succeeded")
		}
	})
	t.Run("not a websocket server", func(t *testing.T) {
		plain := httptest.NewServer(http.NotFoundHandler())
		defer plain.Close()
		if _, err := Dial(t.Context(), plain.URL, nil, nil); err == nil {
			t.Fatal("Dial to a plain HTTP server succeeded")
		}
	})
}

func TestDialTLS(t *testing.T) {
	sessions := make(chan transport.Session, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := Accept(w, r, nil); err == nil {
			sessions <- s
		}
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	for _, tt := range []struct {
		name string
		opts *DialOptions
	}{
		{"TLSConfig", &DialOptions{TLSConfig: &tls.Config{RootCAs: pool}}},
		{"HTTPClient", &DialOptions{HTTPClient: srv.Client()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(t.Context(), srv.URL, nil, tt.opts) // https:// becomes wss://
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseWithError(0, "")
			var s transport.Session
			select {
			case s = <-sessions:
			case <-time.After(testTimeout):
				t.Fatal("no session")
			}
			defer s.CloseWithError(0, "")
			echoOnce(t, c, s)
		})
	}
	if _, err := Dial(t.Context(), srv.URL, nil, nil); err == nil {
		t.Fatal("Dial trusted an unknown certificate")
	}
}

// echoOnce checks that a stream opened by a reaches b and back.
func echoOnce(t *testing.T, a, b transport.Session) {
	t.Helper()
	out, err := a.OpenStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	in, err := b.AcceptStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(in)
	if err != nil || string(got) != "ping" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := in.Write(got); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(out); err != nil || string(got) != "ping" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// TestSequentialStreams opens far more streams than the initial limits, one
// after the other, so they only work if the peer keeps granting stream credit.
func TestSequentialStreams(t *testing.T) {
	const n = 1000
	for _, fr := range framings {
		t.Run(fr.name, func(t *testing.T) {
			client, server := newPair(t, fr.offer)
			for _, dir := range []struct {
				name             string
				opener, acceptor *session
			}{{"client-opens", client, server}, {"server-opens", server, client}} {
				t.Run(dir.name+"/uni", func(t *testing.T) {
					for i := range n {
						out, err := dir.opener.OpenUniStream(t.Context())
						if err != nil {
							t.Fatalf("stream %d: %v", i, err)
						}
						msg := pattern(i, 1+i%100)
						if _, err := out.Write(msg); err != nil {
							t.Fatal(err)
						}
						if err := out.Close(); err != nil {
							t.Fatal(err)
						}
						in, err := dir.acceptor.AcceptUniStream(t.Context())
						if err != nil {
							t.Fatal(err)
						}
						if got, err := io.ReadAll(in); err != nil || !bytes.Equal(got, msg) {
							t.Fatalf("stream %d: read %d bytes, %v", i, len(got), err)
						}
					}
				})
				t.Run(dir.name+"/bidi", func(t *testing.T) {
					for i := range n {
						out, err := dir.opener.OpenStream(t.Context())
						if err != nil {
							t.Fatalf("stream %d: %v", i, err)
						}
						if _, err := out.Write([]byte{byte(i)}); err != nil {
							t.Fatal(err)
						}
						if err := out.Close(); err != nil {
							t.Fatal(err)
						}
						in, err := dir.acceptor.AcceptStream(t.Context())
						if err != nil {
							t.Fatal(err)
						}
						got, err := io.ReadAll(in)
						if err != nil || len(got) != 1 || got[0] != byte(i) {
							t.Fatalf("stream %d: read %x, %v", i, got, err)
						}
						if _, err := in.Write(got); err != nil {
							t.Fatal(err)
						}
						if err := in.Close(); err != nil {
							t.Fatal(err)
						}
						if back, err := io.ReadAll(out); err != nil || !bytes.Equal(back, got) {
							t.Fatalf("stream %d: echo %x, %v", i, back, err)
						}
					}
				})
			}
			// Finished streams are forgotten on both sides.
			for _, s := range []*session{client, server} {
				s.mu.Lock()
				left := len(s.streams)
				s.mu.Unlock()
				if left != 0 {
					t.Errorf("isServer=%t: %d streams still tracked", s.isServer, left)
				}
			}
		})
	}
}

// TestLargeTransfer moves 10 MiB in each direction at once, far beyond the
// initial stream and connection windows.
func TestLargeTransfer(t *testing.T) {
	const size = 10 << 20
	for _, fr := range framings {
		t.Run(fr.name, func(t *testing.T) {
			client, server := newPair(t, fr.offer)
			up, down := pattern(1, size), pattern(2, size)
			out, err := client.OpenStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			uniOut, err := server.OpenUniStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			writes := []<-chan error{
				async(func() error {
					if _, err := out.Write(up); err != nil {
						return err
					}
					return out.Close()
				}),
				async(func() error {
					if _, err := uniOut.Write(down); err != nil {
						return err
					}
					return uniOut.Close()
				}),
			}
			in, err := server.AcceptStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			echo := async(func() error {
				if _, err := io.Copy(in, in); err != nil {
					return err
				}
				return in.Close()
			})
			uniIn, err := client.AcceptUniStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			gotDown := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(uniIn)
				gotDown <- b
			}()
			gotUp, err := io.ReadAll(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range writes {
				if err := await(t, w, "writer"); err != nil {
					t.Fatal(err)
				}
			}
			if err := await(t, echo, "echo"); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotUp, up) {
				t.Fatalf("bidi echo returned %d bytes that differ from the %d sent", len(gotUp), size)
			}
			select {
			case b := <-gotDown:
				if !bytes.Equal(b, down) {
					t.Fatalf("uni stream delivered %d bytes that differ from the %d sent", len(b), size)
				}
			case <-time.After(testTimeout):
				t.Fatal("uni stream not finished")
			}
		})
	}
}

// TestStreamCodes checks codes on reset and stop-sending in both framings,
// including the RESET_STREAM a STOP_SENDING provokes, on the wire.
func TestStreamCodes(t *testing.T) {
	for _, fr := range framings {
		t.Run(fr.name, func(t *testing.T) {
			client, server := newPair(t, fr.offer)
			for _, code := range []uint32{0, 1, 0x3fff, 1 << 31, 1<<32 - 1} {
				out, err := server.OpenUniStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				// Reset before any data: the peer still learns about the stream.
				out.CancelWrite(code)
				in, err := client.AcceptUniStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				_, err = in.Read(make([]byte, 1))
				var se *transport.StreamError
				if !errors.As(err, &se) || se.Code != code || !se.Remote {
					t.Fatalf("read after reset: %v, want code %d from peer", err, code)
				}

				bidi, err := client.OpenStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := bidi.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				peer, err := server.AcceptStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				peer.CancelRead(code)
				select {
				case <-bidi.Context().Done():
				case <-time.After(testTimeout):
					t.Fatal("STOP_SENDING did not cancel the sender")
				}
				_, err = bidi.Write([]byte("y"))
				if !errors.As(err, &se) || se.Code != code || !se.Remote {
					t.Fatalf("write after STOP_SENDING: %v, want code %d from peer", err, code)
				}
				_, err = peer.Read(make([]byte, 1))
				if !errors.As(err, &se) || se.Code != code || se.Remote {
					t.Fatalf("read after CancelRead: %v, want local code %d", err, code)
				}
				bidi.CancelRead(0)
				peer.CancelWrite(0)
			}
		})
	}
}

func TestStreamCodesOnWire(t *testing.T) {
	for _, fr := range []struct {
		name, sub string
		final     bool
	}{{"qmux-00", SubprotocolQMux00, true}, {"webtransport", SubprotocolWebTransport, false}} {
		t.Run(fr.name, func(t *testing.T) {
			url, peers := rawServer(t, fr.sub)
			c := dialTest(t, url, Offer(nil))
			p := nextRaw(t, peers)
			if fr.final {
				if f := p.expect(KindTransportParameters); f.Params != defaultTransportParams {
					t.Fatalf("client parameters %+v", f.Params)
				}
				p.sendParams()
			}
			// A reset stream that carried nothing is announced first.
			out, err := c.OpenUniStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			out.CancelWrite(42)
			if f := p.expect(KindStream); f.StreamID != 2 || len(f.Data) != 0 || f.Fin {
				t.Fatalf("announcement %+v", f)
			}
			if f := p.expect(KindResetStream); f.StreamID != 2 || f.Code != 42 || f.FinalSize != 0 {
				t.Fatalf("reset %+v", f)
			}
			// STOP_SENDING is answered with RESET_STREAM carrying its code; the
			// final size is what was sent.
			out, err = c.OpenUniStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := out.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if f := p.expect(KindStream); f.StreamID != 6 || string(f.Data) != "hello" {
				t.Fatalf("data %+v", f)
			}
			p.send(Frame{Kind: KindStopSending, StreamID: 6, Code: 77})
			f := p.expect(KindResetStream)
			wantFinal := uint64(0)
			if fr.final {
				wantFinal = 5
			}
			if f.StreamID != 6 || f.Code != 77 || f.FinalSize != wantFinal {
				t.Fatalf("reset %+v", f)
			}
			// CancelRead sends STOP_SENDING.
			p.send(Frame{Kind: KindStream, StreamID: 3, Data: []byte("abc")})
			in, err := c.AcceptUniStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			in.CancelRead(9)
			if f := p.expect(KindStopSending); f.StreamID != 3 || f.Code != 9 {
				t.Fatalf("stop sending %+v", f)
			}
		})
	}
}

// TestCloseOnWire checks the close frames against the @moq/qmux encodings.
func TestCloseOnWire(t *testing.T) {
	for _, tt := range []struct {
		sub  string
		want string
	}{
		{SubprotocolQMux00, "1d000003627965"}, // session_trace_07
		{SubprotocolWebTransport, "1d00627965"},
	} {
		t.Run(tt.sub, func(t *testing.T) {
			p, s := rawPair(t, newTestServer(t, nil), tt.sub)
			if tt.sub == SubprotocolQMux00 {
				p.expect(KindTransportParameters)
			}
			closed := async(func() error { return s.CloseWithError(0, "bye") })
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			_, msg, err := p.conn.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(msg) != tt.want {
				t.Fatalf("close frame %x, want %s", msg, tt.want)
			}
			// Then the WebSocket close handshake.
			if _, _, err := p.conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("after the close frame: %v, want a normal WebSocket closure", err)
			}
			if err := await(t, closed, "CloseWithError"); err != nil {
				t.Fatal(err)
			}
			wantSessionError(t, context.Cause(s.Context()), 0, "bye", false)
		})
	}
}

// traceVectors returns the vectors whose names start with prefix, in file order.
func traceVectors(t *testing.T, prefix string) []vector {
	var out []vector
	for _, v := range loadVectors(t).Vectors {
		if strings.HasPrefix(v.Name, prefix) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s* vectors", prefix)
	}
	return out
}

// TestLiteConnectTrace replays what @moq/lite 0.2.2 sends over the WebSocket
// fallback against a server session, and answers the way a relay does.
func TestLiteConnectTrace(t *testing.T) {
	vf := loadVectors(t)
	trace := traceVectors(t, "lite_connect_ws_")
	ts := newTestServer(t, []string{"moq-lite-03"})
	p, s := rawPair(t, ts, vf.Negotiation.LiteConnectOffer...)
	if s.framing != QMux00 || s.Protocol() != "" {
		t.Fatalf("framing %v, protocol %q; want qmux-00 without protocol", s.framing, s.Protocol())
	}
	first, err := p.recv()
	if err != nil {
		t.Fatal(err)
	}
	want := *vf.Negotiation.Selections[2].FirstFrameHex
	if b, _ := AppendFrame(nil, &first, QMux00); hex.EncodeToString(b) != want {
		t.Fatalf("server's first frame %x, want %s", b, want)
	}
	// Everything up to the two closes.
	streams := map[uint64][]byte{}
	var closes int
	for _, v := range trace {
		f, _, err := ParseFrame(v.bytes(t), QMux00)
		if err != nil {
			t.Fatal(err)
		}
		switch f.Kind {
		case KindStream:
			streams[f.StreamID] = append(streams[f.StreamID], f.Data...)
		case KindApplicationClose:
			closes++
			continue
		}
		p.sendRaw(v.bytes(t))
	}
	if closes != 2 {
		t.Fatalf("trace has %d closes, want 2", closes)
	}
	setup, err := s.AcceptStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(streams[0]))
	if _, err := io.ReadFull(setup, got); err != nil || !bytes.Equal(got, streams[0]) {
		t.Fatalf("CLIENT_SETUP stream: %x, %v", got, err)
	}
	announce, err := s.AcceptStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got = make([]byte, len(streams[4]))
	if _, err := io.ReadFull(announce, got); err != nil || !bytes.Equal(got, streams[4]) {
		t.Fatalf("announce stream: %x, %v", got, err)
	}
	// The server's reply reaches the client as one STREAM frame on bidi 0.
	reply, _ := hex.DecodeString("21001bc0000000ff0dad0202028000a455070b6d6f712d6c6974652d6a73")
	if _, err := setup.Write(reply); err != nil {
		t.Fatal(err)
	}
	if f := p.expect(KindStream); f.StreamID != 0 || !bytes.Equal(f.Data, reply) || f.Fin {
		t.Fatalf("reply frame %+v", f)
	}
	// The duplicated APPLICATION_CLOSE is tolerated.
	for _, v := range trace {
		if v.Message == "connection_close" {
			p.sendRaw(v.bytes(t))
		}
	}
	wantSessionError(t, waitClosed(t, s.Context()), 0, "", true)
	if _, err := setup.Read(make([]byte, 1)); err == nil {
		t.Fatal("read on a closed session succeeded")
	}
}

// TestSessionTrace replays the @moq/qmux group-stream trace: data on uni
// stream 2, a reset, then a close with a reason.
func TestSessionTrace(t *testing.T) {
	trace := traceVectors(t, "session_trace_")
	p, s := rawPair(t, newTestServer(t, nil), SubprotocolQMux00)
	var data []byte
	i := 0
	for ; trace[i].Message != "reset_stream"; i++ {
		f, _, err := ParseFrame(trace[i].bytes(t), QMux00)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, f.Data...)
		p.sendRaw(trace[i].bytes(t))
	}
	in, err := s.AcceptUniStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := io.ReadFull(in, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("group stream: %x, %v; want %x", got, err, data)
	}
	p.sendRaw(trace[i].bytes(t)) // RESET_STREAM code 0
	_, err = in.Read(make([]byte, 1))
	var se *transport.StreamError
	if !errors.As(err, &se) || se.Code != 0 || !se.Remote {
		t.Fatalf("read after reset: %v", err)
	}
	p.sendRaw(trace[i+1].bytes(t)) // APPLICATION_CLOSE "bye"
	wantSessionError(t, waitClosed(t, s.Context()), 0, "bye", true)
}

// TestPeerViolations has a hand-crafted peer break the rules; the session must
// end with a clear error and a CONNECTION_CLOSE, while another session on the
// same server keeps working.
func TestPeerViolations(t *testing.T) {
	big := make([]byte, MaxStreamPayload)
	tests := []struct {
		name   string
		sub    string
		params bool
		send   func(p *rawPeer)
		code   TransportErrorCode
	}{
		{"connection flow control", SubprotocolQMux00, true, func(p *rawPeer) {
			// 100 streams x 16 KiB overruns the 1 MiB connection window.
			for i := range uint64(100) {
				if p.trySend(Frame{Kind: KindStream, StreamID: i << 2, Data: big}) != nil {
					return // cut off
				}
			}
		}, FlowControlError},
		{"stream flow control", SubprotocolQMux00, true, func(p *rawPeer) {
			for range 17 { // 17 x 16360 > 262144
				if p.trySend(Frame{Kind: KindStream, StreamID: 0, Data: big}) != nil {
					return
				}
			}
		}, FlowControlError},
		{"bidi stream limit", SubprotocolQMux00, true, func(p *rawPeer) {
			p.send(Frame{Kind: KindStream, StreamID: 99 << 2, Data: []byte("last allowed")})
			p.send(Frame{Kind: KindStream, StreamID: 100 << 2, Data: []byte("one too many")})
		}, StreamLimitError},
		{"uni stream limit", SubprotocolQMux00, true, func(p *rawPeer) {
			p.send(Frame{Kind: KindResetStream, StreamID: 100<<2 | 2})
		}, StreamLimitError},
		{"oversized STREAM", SubprotocolQMux00, true, func(p *rawPeer) {
			p.send(Frame{Kind: KindStream, StreamID: 0, Data: make([]byte, MaxStreamPayload+1)})
		}, FrameEncodingError},
		{"oversized message", SubprotocolQMux00, true, func(p *rawPeer) {
			p.sendRaw(make([]byte, readLimit+1))
		}, FrameEncodingError},
		{"first frame not parameters", SubprotocolQMux00, false, func(p *rawPeer) {
			p.send(Frame{Kind: KindStream, StreamID: 0, Data: []byte("hi")})
		}, TransportParameterError},
		{"malformed frame", SubprotocolQMux00, true, func(p *rawPeer) {
			p.sendRaw([]byte{0x0a, 0x00, 0x05, 'h', 'i'}) // length beyond the message
		}, FrameEncodingError},
		{"empty message", SubprotocolQMux00, true, func(p *rawPeer) {
			p.sendRaw(nil)
		}, FrameEncodingError},
		{"data on our uni stream", SubprotocolQMux00, true, func(p *rawPeer) {
			p.send(Frame{Kind: KindStream, StreamID: 3, Data: []byte("x")})
		}, StreamStateError},
		{"data on a stream we never opened", SubprotocolQMux00, true, func(p *rawPeer) {
			p.send(Frame{Kind: KindStream, StreamID: 1, Data: []byte("x")})
		}, StreamStateError},
		{"data after FIN", SubprotocolQMux00, true, func(p *rawPeer) {
			p.send(Frame{Kind: KindStream, StreamID: 2, Data: []byte("x"), Fin: true})
			p.send(Frame{Kind: KindStream, StreamID: 2, Data: []byte("y")})
		}, FinalSizeError},
		{"MAX_STREAMS above 2^60", SubprotocolQMux00, true, func(p *rawPeer) {
			p.send(Frame{Kind: KindMaxStreamsUni, Max: 1<<60 + 1})
		}, FrameEncodingError},
		{"legacy unknown frame", SubprotocolWebTransport, false, func(p *rawPeer) {
			p.sendRaw([]byte{0x10, 0x00})
		}, FrameEncodingError},
	}
	ts := newTestServer(t, nil)
	// A well-behaved session on the same server, used after every violation.
	good := dialTest(t, ts.URL, Offer(nil))
	goodServer := ts.next(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s := rawPair(t, ts, tt.sub)
			if tt.params {
				p.sendParams()
			}
			tt.send(p)
			cause := waitClosed(t, s.Context())
			wantTransportError(t, cause, tt.code)
			// The peer is told why, unless the message was too big to read at all.
			if tt.name != "oversized message" {
				kind, wantCode := KindConnectionClose, uint64(tt.code)
				if tt.sub == SubprotocolWebTransport {
					kind = KindApplicationClose
				}
				for {
					f, err := p.recv()
					if err != nil {
						t.Fatalf("no close frame: %v", err)
					}
					if f.Kind == kind {
						if f.Code != wantCode || f.Reason == "" {
							t.Fatalf("close frame %+v, want code %d with a reason", f, wantCode)
						}
						break
					}
				}
			}
			echoOnce(t, good, goodServer)
		})
	}
}

// TestNoStreamsBeforeParameters checks that no stream opens before the peer's
// transport parameters arrive, and that ours are the first frame sent.
func TestNoStreamsBeforeParameters(t *testing.T) {
	url, peers := rawServer(t, SubprotocolQMux00)
	c := dialTest(t, url, Offer(nil))
	p := nextRaw(t, peers)
	for _, open := range []func(context.Context) error{
		func(ctx context.Context) error { _, err := c.OpenStream(ctx); return err },
		func(ctx context.Context) error { _, err := c.OpenUniStream(ctx); return err },
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		err := open(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("open before parameters: %v, want context.DeadlineExceeded", err)
		}
	}
	pending := async(func() error { _, err := c.OpenUniStream(t.Context()); return err })
	if f := p.expect(KindTransportParameters); f.Params != defaultTransportParams {
		t.Fatalf("first frame %+v", f)
	}
	p.sendParams()
	if err := await(t, pending, "OpenUniStream"); err != nil {
		t.Fatal(err)
	}
}

// TestPeerLimits gives the session asymmetric limits and checks that each
// stream kind is held to the right one and resumes when credit arrives.
func TestPeerLimits(t *testing.T) {
	url, peers := rawServer(t, SubprotocolQMux00)
	c := dialTest(t, url, Offer(nil))
	p := nextRaw(t, peers)
	p.expect(KindTransportParameters)
	p.send(Frame{Kind: KindTransportParameters, Params: TransportParams{
		InitialMaxData:                 1 << 20,
		InitialMaxStreamDataBidiLocal:  1000, // streams the raw peer opens
		InitialMaxStreamDataBidiRemote: 2000, // bidi streams the session opens
		InitialMaxStreamDataUni:        3000,
		InitialMaxStreamsBidi:          1,
		InitialMaxStreamsUni:           1,
	}})
	// received counts the bytes the raw peer gets per stream until it has want.
	received := map[uint64]int{}
	waitFor := func(want map[uint64]int) {
		t.Helper()
		for !mapsEqual(received, want) {
			f, err := p.recv()
			if err != nil {
				t.Fatalf("waiting for %v (have %v): %v", want, received, err)
			}
			if f.Kind == KindStream {
				received[f.StreamID] += len(f.Data)
			}
		}
	}
	data := make([]byte, 10000)
	bidi, err := c.OpenStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	uni, err := c.OpenUniStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	writes := []<-chan error{
		async(func() error { _, err := bidi.Write(data); return err }),
		async(func() error { _, err := uni.Write(data); return err }),
	}
	p.send(Frame{Kind: KindStream, StreamID: 1, Data: []byte("x")}) // peer-opened bidi
	in, err := c.AcceptStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	writes = append(writes, async(func() error { _, err := in.Write(data); return err }))
	waitFor(map[uint64]int{0: 2000, 2: 3000, 1: 1000})

	// The stream limits hold too, until MAX_STREAMS.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, err = c.OpenUniStream(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second uni stream: %v, want context.DeadlineExceeded", err)
	}
	pending := async(func() error { _, err := c.OpenUniStream(t.Context()); return err })
	p.send(Frame{Kind: KindMaxStreamsUni, Max: 2})
	if err := await(t, pending, "OpenUniStream after MAX_STREAMS"); err != nil {
		t.Fatal(err)
	}

	// MAX_STREAM_DATA releases each stream; MAX_DATA bounds them all.
	for id := range uint64(3) {
		p.send(Frame{Kind: KindMaxStreamData, StreamID: id, Max: 10000})
	}
	waitFor(map[uint64]int{0: 10000, 2: 10000, 1: 10000})
	for _, w := range writes {
		if err := await(t, w, "write"); err != nil {
			t.Fatal(err)
		}
	}
}

func mapsEqual(a, b map[uint64]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestConnectionWindow checks MAX_DATA: the session never exceeds the peer's
// connection limit, and resumes when it grows.
func TestConnectionWindow(t *testing.T) {
	url, peers := rawServer(t, SubprotocolQMux00)
	c := dialTest(t, url, Offer(nil))
	p := nextRaw(t, peers)
	p.expect(KindTransportParameters)
	params := defaultTransportParams
	params.InitialMaxData = 5000
	p.send(Frame{Kind: KindTransportParameters, Params: params})
	out, err := c.OpenUniStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	write := async(func() error { _, err := out.Write(make([]byte, 20000)); return err })
	total := 0
	for total < 5000 {
		total += len(p.expect(KindStream).Data)
	}
	if total != 5000 {
		t.Fatalf("sent %d bytes with 5000 of credit", total)
	}
	p.send(Frame{Kind: KindMaxData, Max: 20000})
	for total < 20000 {
		total += len(p.expect(KindStream).Data)
	}
	if err := await(t, write, "write"); err != nil {
		t.Fatal(err)
	}
}

// TestCreditGrants checks the credit a session returns to a JS-like peer that
// opens streams one per group and sends until its windows are used.
func TestCreditGrants(t *testing.T) {
	p, s := rawPair(t, newTestServer(t, nil), SubprotocolQMux00)
	p.sendParams()
	// 100 uni streams, each finished: the whole initial stream limit.
	for i := range uint64(100) {
		p.send(Frame{Kind: KindStream, StreamID: i<<2 | 2, Data: []byte{byte(i)}, Fin: true})
	}
	for range 100 {
		in, err := s.AcceptUniStream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(in); err != nil {
			t.Fatal(err)
		}
	}
	for f := p.expect(KindMaxStreamsUni); f.Max != 200; f = p.expect(KindMaxStreamsUni) {
		if f.Max > 200 {
			t.Fatalf("MAX_STREAMS %d, want at most 200", f.Max)
		}
	}
	// 4 MiB on one bidi stream, read as it arrives: the peer is granted stream and
	// connection credit as the application reads.
	in := async(func() error {
		st, err := s.AcceptStream(t.Context())
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, st)
		if err == nil && n != 4<<20 {
			err = errors.New("short stream")
		}
		return err
	})
	streamMax, connMax := defaultTransportParams.InitialMaxStreamDataBidiLocal, defaultTransportParams.InitialMaxData
	chunk := make([]byte, MaxStreamPayload)
	for sent := uint64(0); sent < 4<<20; {
		for sent == streamMax || sent == connMax {
			f, err := p.recv()
			if err != nil {
				t.Fatalf("waiting for credit at %d: %v", sent, err)
			}
			switch f.Kind {
			case KindMaxStreamData:
				if f.StreamID != 0 || f.Max <= streamMax {
					t.Fatalf("bad MAX_STREAM_DATA %+v", f)
				}
				streamMax = f.Max
			case KindMaxData:
				if f.Max <= connMax {
					t.Fatalf("bad MAX_DATA %+v", f)
				}
				connMax = f.Max
			}
		}
		n := min(uint64(len(chunk)), streamMax-sent, connMax-sent, 4<<20-sent)
		p.send(Frame{Kind: KindStream, StreamID: 0, Data: chunk[:n], Fin: sent+n == 4<<20})
		sent += n
	}
	if err := await(t, in, "reader"); err != nil {
		t.Fatal(err)
	}
}

// TestPriorityOrder holds back the session's data with zero connection credit,
// then checks that it is sent most urgent first, then in opening order.
func TestPriorityOrder(t *testing.T) {
	url, peers := rawServer(t, SubprotocolQMux00)
	c := dialTest(t, url, Offer(nil))
	p := nextRaw(t, peers)
	p.expect(KindTransportParameters)
	params := defaultTransportParams
	params.InitialMaxData = 0
	p.send(Frame{Kind: KindTransportParameters, Params: params})
	urgencies := []int{5, 1, 7, 1, 0}
	var order []uint64 // expected stream ids
	for _, u := range []int{0, 1, 5, 7} {
		for i, v := range urgencies {
			if v == u {
				order = append(order, uint64(i)<<2|2)
			}
		}
	}
	for i, u := range urgencies {
		s, err := c.OpenUniStream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		s.SetPriority(u)
		if _, err := s.Write(pattern(i, 20000)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	p.send(Frame{Kind: KindMaxData, Max: 1 << 20})
	var got []uint64
	for len(got) < len(order) {
		f := p.expect(KindStream)
		if len(got) == 0 || got[len(got)-1] != f.StreamID {
			got = append(got, f.StreamID)
		}
	}
	for i := range order {
		if got[i] != order[i] {
			t.Fatalf("streams sent in order %v, want %v", got, order)
		}
	}
}

// TestIgnoredMessages checks that text messages, ignored frame types and bytes
// after a frame do not disturb a session.
func TestIgnoredMessages(t *testing.T) {
	p, s := rawPair(t, newTestServer(t, nil), SubprotocolQMux00)
	p.sendParams()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if err := p.conn.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"31026869", "01", "3000", "14801000001500001600", "1700"} {
		b, _ := hex.DecodeString(msg)
		p.sendRaw(b)
	}
	// STREAM with a length, then junk the frame does not cover.
	p.sendRaw([]byte{0x0b, 0x02, 0x02, 'o', 'k', 0xff, 0xff})
	in, err := s.AcceptUniStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(in); err != nil || string(got) != "ok" {
		t.Fatalf("read %q, %v", got, err)
	}
	select {
	case <-s.Context().Done():
		t.Fatalf("session closed: %v", context.Cause(s.Context()))
	default:
	}
}

// TestConnectionLost checks the cause when the WebSocket ends without a close frame.
func TestConnectionLost(t *testing.T) {
	p, s := rawPair(t, newTestServer(t, nil), SubprotocolQMux00)
	p.sendParams()
	pending := async(func() error { _, err := s.AcceptStream(context.Background()); return err })
	_ = p.conn.CloseNow()
	cause := waitClosed(t, s.Context())
	if !errors.Is(cause, ErrConnectionLost) {
		t.Fatalf("cause %v, want ErrConnectionLost", cause)
	}
	if err := await(t, pending, "AcceptStream"); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("AcceptStream: %v", err)
	}
}

// TestLegacyBackpressure floods a legacy session, which has no flow control,
// with more than it buffers: it stops reading until the application catches up,
// and then delivers everything.
func TestLegacyBackpressure(t *testing.T) {
	ts := newTestServer(t, nil)
	p, s := rawPair(t, ts, SubprotocolWebTransport)
	paused := make(chan struct{}, 1)
	s.mu.Lock()
	s.testHookBackpressure = func() {
		select {
		case paused <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	const streams, total = 4, legacyRecvBuffer + 4<<20
	sent := async(func() error {
		for off := 0; off < total; off += MaxStreamPayload {
			n := min(MaxStreamPayload, total-off)
			id := uint64(off/MaxStreamPayload%streams) << 2
			if err := p.trySend(Frame{Kind: KindStream, StreamID: id, Data: pattern(off, n), Fin: off+n == total}); err != nil {
				return err
			}
		}
		for id := range uint64(streams) {
			if err := p.trySend(Frame{Kind: KindStream, StreamID: id << 2, Fin: true}); err != nil {
				return err
			}
		}
		return nil
	})
	select {
	case <-paused:
	case <-time.After(testTimeout):
		t.Fatal("the reader never paused")
	}
	s.mu.Lock()
	buffered := s.recvConnOffset - s.recvConnConsumed
	s.mu.Unlock()
	if buffered < legacyRecvBuffer || buffered > legacyRecvBuffer+readLimit {
		t.Fatalf("paused with %d bytes buffered, want %d to %d", buffered, legacyRecvBuffer, legacyRecvBuffer+readLimit)
	}
	counts := make(chan int64, streams)
	for range streams {
		in, err := s.AcceptStream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			n, _ := io.Copy(io.Discard, in)
			counts <- n
		}()
	}
	var got int64
	for range streams {
		select {
		case n := <-counts:
			got += n
		case <-time.After(testTimeout):
			t.Fatal("streams not finished")
		}
	}
	if got != total {
		t.Fatalf("received %d bytes, want %d", got, total)
	}
	if err := await(t, sent, "flood"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Context().Done():
		t.Fatalf("session closed: %v", context.Cause(s.Context()))
	default:
	}
}

// TestFrameSplitting checks that a large write leaves as STREAM frames of at
// most MaxStreamPayload bytes, as @moq/qmux expects.
func TestFrameSplitting(t *testing.T) {
	for _, sub := range []string{SubprotocolQMux00, SubprotocolWebTransport} {
		t.Run(sub, func(t *testing.T) {
			url, peers := rawServer(t, sub)
			c := dialTest(t, url, Offer(nil))
			p := nextRaw(t, peers)
			if sub == SubprotocolQMux00 {
				p.expect(KindTransportParameters)
				p.sendParams()
			}
			out, err := c.OpenUniStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			data := pattern(3, 3*MaxStreamPayload+920)
			if _, err := out.Write(data); err != nil { // buffered whole: below sendBufferSize
				t.Fatal(err)
			}
			var sizes []int
			var got []byte
			for len(got) < len(data) {
				f := p.expect(KindStream)
				sizes = append(sizes, len(f.Data))
				got = append(got, f.Data...)
			}
			if want := []int{MaxStreamPayload, MaxStreamPayload, MaxStreamPayload, 920}; !slices.Equal(sizes, want) {
				t.Fatalf("STREAM payload sizes %v, want %v", sizes, want)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("payload differs")
			}
		})
	}
}
