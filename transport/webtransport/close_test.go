package webtransport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/transport"
	moqquic "github.com/moqgo/moq/transport/quic"
)

// exitConn is a UDP socket that can die like the socket of a process that
// exited: after exit, what it is handed is dropped and nothing arrives. What
// it was handed before has been written to the kernel, which on loopback
// has delivered it to the peer's socket. It hides the *net.UDPConn's
// batch and OOB methods, so quic-go sends every packet through WriteTo.
type exitConn struct {
	net.PacketConn
	udp    *net.UDPConn
	exited atomic.Bool
}

func newExitConn(udp *net.UDPConn) *exitConn { return &exitConn{PacketConn: udp, udp: udp} }

// exit makes the socket dead.
func (c *exitConn) exit() { c.exited.Store(true) }

func (c *exitConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.exited.Load() {
			return n, addr, err
		}
	}
}

func (c *exitConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.exited.Load() {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *exitConn) SetReadBuffer(n int) error  { return c.udp.SetReadBuffer(n) }
func (c *exitConn) SetWriteBuffer(n int) error { return c.udp.SetWriteBuffer(n) }

// dialOn is Dial over sock rather than over a socket of its own.
func dialOn(tb testing.TB, sock net.PacketConn, ts *testServer, protocols []string) *session {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &quicgo.Transport{Conn: sock}
	tb.Cleanup(func() { _ = tr.Close() })
	addr, err := net.ResolveUDPAddr("udp", ts.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tlsConf, err := moqquic.ClientTLSConfig(clientTLS(tb), ts.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tlsConf.NextProtos = []string{http3.NextProtoH3}
	conn, err := tr.Dial(ctx, addr, tlsConf, moqquic.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	cc, err := (&wt.Transport{ApplicationProtocols: protocols}).NewClientConn(conn)
	if err != nil {
		tb.Fatal(err)
	}
	_, sess, err := cc.Dial(ctx, "https://"+ts.addr+"/", nil)
	if err != nil {
		_ = conn.CloseWithError(0, "")
		tb.Fatal(err)
	}
	s := wrap(sess, conn, nil)
	tb.Cleanup(func() { _ = s.CloseWithError(0, "") })
	return s
}

func listenUDP(tb testing.TB) *net.UDPConn {
	tb.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = udp.Close() })
	return udp
}

// TestCloseReachesPeerBeforeExit closes a session and at once kills the
// closing side's socket, as a process does that exits when CloseWithError
// returns (moq pub): the peer must learn the code within a second, not at
// its idle timeout. webtransport-go only queues the close capsule, and
// quic-go sends it later, so CloseWithError must wait until the connection
// is closed: by the peer, which proves the capsule arrived, or by a
// CONNECTION_CLOSE quic-go has written to the socket.
func TestCloseReachesPeerBeforeExit(t *testing.T) {
	for _, closer := range []string{"client", "server"} {
		t.Run(closer, func(t *testing.T) {
			var ghosts, early int
			for round := range 20 {
				t.Run(fmt.Sprint(round), func(t *testing.T) {
					handler, sessions, _ := acceptAll()
					opts := serverOptions{protocols: []string{"moql"}, handler: handler}
					var sock *exitConn
					if closer == "server" {
						opts.socket = func(udp *net.UDPConn) net.PacketConn {
							sock = newExitConn(udp)
							return sock
						}
					}
					ts := startServer(t, opts)
					var c, peer transport.Session
					if closer == "client" {
						sock = newExitConn(listenUDP(t))
						c = dialOn(t, sock, ts, []string{"moql"})
						peer = receive(t, sessions)
						t.Cleanup(func() { _ = peer.CloseWithError(0, "") })
					} else {
						client, _, err := dial(t, ts, "/", []string{"moql"}, nil)
						if err != nil {
							t.Fatal(err)
						}
						c, peer = receive(t, sessions), client
						t.Cleanup(func() { _ = c.CloseWithError(0, "") })
					}

					if err := c.CloseWithError(42, "bye"); err != nil {
						t.Fatal(err)
					}
					sock.exit()
					if c.(*session).conn.Context().Err() == nil {
						early++
						t.Errorf("CloseWithError returned before the QUIC connection was closed")
					}
					select {
					case <-peer.Context().Done():
					case <-time.After(time.Second):
						ghosts++
						t.Fatal("the peer did not learn of the close within 1 s of the closing side's exit")
					}
					want := transport.SessionError{Code: 42, Reason: "bye", Remote: true}
					var se *transport.SessionError
					if cause := context.Cause(peer.Context()); !errors.As(cause, &se) || *se != want {
						t.Fatalf("peer's cause = %v, want %v", cause, &want)
					}
				})
			}
			if ghosts+early > 0 {
				t.Errorf("of 20 closes by the %s: %d returned before the connection closed, %d never reached the peer", closer, early, ghosts)
			}
		})
	}
}

// TestCloseBoundedWhenPeerSilent closes a session whose peer no longer
// answers: CloseWithError must not wait for it beyond its bound, and must
// have closed the connection itself, which sends the code in a
// CONNECTION_CLOSE.
func TestCloseBoundedWhenPeerSilent(t *testing.T) {
	handler, sessions, _ := acceptAll()
	var sock *exitConn
	ts := startServer(t, serverOptions{protocols: []string{"moql"}, handler: handler,
		socket: func(udp *net.UDPConn) net.PacketConn {
			sock = newExitConn(udp)
			return sock
		}})
	client, _, err := dial(t, ts, "/", []string{"moql"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	server := receive(t, sessions)
	t.Cleanup(func() { _ = server.CloseWithError(0, "") })

	sock.exit()
	start := time.Now()
	if err := client.CloseWithError(42, "bye"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > closeTimeout+time.Second {
		t.Errorf("CloseWithError took %v with a silent peer, want at most about %v", d, closeTimeout)
	}
	conn := client.(*session).conn
	if conn.Context().Err() == nil {
		t.Fatal("CloseWithError returned before the QUIC connection was closed")
	}
	var ae *quicgo.ApplicationError
	if cause := context.Cause(conn.Context()); !errors.As(cause, &ae) || ae.Remote ||
		uint64(ae.ErrorCode) != codeToHTTP(42) || ae.ErrorMessage != "bye" {
		t.Errorf("connection closed with %v, want a local CONNECTION_CLOSE with the mapped code %#x", cause, codeToHTTP(42))
	}
	var se *transport.SessionError
	if cause := context.Cause(client.Context()); !errors.As(cause, &se) || se.Code != 42 || se.Remote {
		t.Errorf("client's cause = %v, want the local close with code 42", cause)
	}
}
