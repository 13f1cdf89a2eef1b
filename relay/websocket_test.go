package relay_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/session"
	"github.com/moqgo/moq/transport/qmux"
)

// TestWebSocketBadPeer sends the relay frames a QMux peer must not send; the
// relay closes that session with an error and keeps serving the others.
func TestWebSocketBadPeer(t *testing.T) {
	r := startRelay(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	good := dial(t, ctx, r, "websocket", session.Config{})

	cases := []struct {
		name  string
		frame []byte
	}{
		// A STREAM frame before the transport parameters.
		{"stream first", []byte{0x0a, 0x00, 0x01, 'x'}},
		// A STREAM frame cut short, after valid parameters.
		{"truncated frame", []byte{0x08}},
		// More data than the advertised connection window (1 MiB) on one stream.
		{"flow control", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, _, err := websocket.Dial(ctx, "ws://127.0.0.1:"+strconv.Itoa(r.Port())+"/",
				&websocket.DialOptions{Subprotocols: []string{qmux.SubprotocolQMux00}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			conn.SetReadLimit(1 << 20)
			switch {
			case tc.frame != nil && tc.name == "stream first":
				send(t, ctx, conn, tc.frame)
			case tc.frame != nil:
				send(t, ctx, conn, transportParams(t))
				send(t, ctx, conn, tc.frame)
			default:
				send(t, ctx, conn, transportParams(t))
				chunk := make([]byte, qmux.MaxStreamPayload)
				for off := uint64(0); off <= 2<<20; off += uint64(len(chunk)) {
					b, err := qmux.AppendFrame(nil, &qmux.Frame{Kind: qmux.KindStream, StreamID: 0, Data: chunk}, qmux.QMux00)
					if err != nil {
						t.Fatal(err)
					}
					if conn.Write(ctx, websocket.MessageBinary, b) != nil {
						break // already closed by the relay
					}
				}
			}
			// The relay ends this WebSocket: reads fail with a close frame.
			for {
				if _, _, err := conn.Read(ctx); err != nil {
					if ctx.Err() != nil {
						t.Fatal("the relay did not close the misbehaving session")
					}
					break
				}
			}
		})
	}

	// The well-behaved session still works.
	track, err := good.ConsumeBroadcast(moq.NewPath("nobody")).SubscribeTrack(moq.Track{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	if _, err := track.NextGroup(ctx); !errors.Is(err, moq.ErrNotFound) {
		t.Fatalf("after the bad peers: %v, want ErrNotFound from a live session", err)
	}
}

func send(t *testing.T, ctx context.Context, conn *websocket.Conn, b []byte) {
	t.Helper()
	if err := conn.Write(ctx, websocket.MessageBinary, b); err != nil {
		t.Fatal(err)
	}
}

// transportParams is a valid QX_TRANSPORT_PARAMETERS frame.
func transportParams(t *testing.T) []byte {
	t.Helper()
	b, err := qmux.AppendFrame(nil, &qmux.Frame{Kind: qmux.KindTransportParameters, Params: qmux.TransportParams{
		InitialMaxData: 1 << 20, InitialMaxStreamDataBidiLocal: 1 << 18, InitialMaxStreamDataBidiRemote: 1 << 18,
		InitialMaxStreamDataUni: 1 << 18, InitialMaxStreamsBidi: 100, InitialMaxStreamsUni: 100,
	}}, qmux.QMux00)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDialWebSocketFallback races WebTransport and WebSocket to a server that
// only speaks WebSocket (nothing listens on UDP): WebSocket wins after its
// head start, and wins at once the next time.
func TestDialWebSocketFallback(t *testing.T) {
	cert, err := selfsign.Default(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	origin := moq.NewOrigin()
	b, _ := origin.CreateBroadcast(moq.NewPath("ws-only"))
	defer b.Close()
	// WebSocket handlers outlive http.Server.Close (their connections are
	// hijacked), so the sessions they start are tracked here.
	var (
		mu       sync.Mutex
		closed   bool
		sessions []*session.Session
		handlers sync.WaitGroup
	)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		if closed {
			mu.Unlock()
			http.Error(w, "closed", http.StatusServiceUnavailable)
			return
		}
		handlers.Add(1)
		mu.Unlock()
		defer handlers.Done()
		conn, err := qmux.Accept(w, req, session.Protocols())
		if err != nil {
			return
		}
		sess, err := session.Accept(req.Context(), conn, &session.Config{Publish: origin.Consume(), Logger: testLogger()})
		if err != nil {
			return
		}
		mu.Lock()
		sessions = append(sessions, sess)
		mu.Unlock()
	})}
	ln := listenTLS(t, cert)
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		_ = srv.Close()
		mu.Lock()
		closed = true
		mu.Unlock()
		handlers.Wait()
		for _, sess := range sessions {
			_ = sess.Close()
		}
	}()

	url := "https://" + ln.Addr().String() + "/"
	for attempt := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		client := moq.NewOrigin()
		start := time.Now()
		sess, err := session.Dial(ctx, url, &session.Config{Consume: client, Logger: testLogger(),
			DialOptions: session.DialOptions{Fingerprint: selfsign.Fingerprint(cert), WebSocketFallback: true}})
		if err != nil {
			cancel()
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		elapsed := time.Since(start)
		announced := client.Consume().Announcements()
		if _, err := announced.Next(ctx); err != nil {
			t.Fatalf("attempt %d: no announcement over the WebSocket session: %v", attempt, err)
		}
		announced.Close()
		_ = sess.Close()
		cancel()
		if attempt == 0 && elapsed < 200*time.Millisecond {
			t.Errorf("first dial took %v: WebSocket should wait for its 200 ms head start", elapsed)
		}
	}
}

func listenTLS(t *testing.T, cert tls.Certificate) net.Listener {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
