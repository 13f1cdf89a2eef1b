package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/moqgo/moq/transport"
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

// TestCloseReachesPeerBeforeExit closes a session and at once kills the
// closing side's socket, as a process does that exits when CloseWithError
// returns (moq pub): the peer must learn the code within a second, not at
// its idle timeout. It guards the order quic-go provides, which
// CloseWithError relies on: the CONNECTION_CLOSE is written to the socket
// before the connection's context ends.
func TestCloseReachesPeerBeforeExit(t *testing.T) {
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	alpns := []string{"moql"}
	for _, closer := range []string{"client", "server"} {
		t.Run(closer, func(t *testing.T) {
			for round := range 20 {
				t.Run(fmt.Sprint(round), func(t *testing.T) {
					var sock *exitConn
					ep := endpoint{cert: cert, alpns: alpns}
					if closer == "server" {
						ep.socket = func(udp *net.UDPConn) net.PacketConn {
							sock = newExitConn(udp)
							return sock
						}
					}
					ln := listen(t, ep)
					clientTLS := &tls.Config{RootCAs: certPool(cert), NextProtos: alpns}
					var c, peer transport.Session
					if closer == "server" {
						client, server, err := connect(t, ln, ln.Addr().String(), clientTLS)
						if err != nil {
							t.Fatal(err)
						}
						c, peer = server, client
					} else {
						sock = newExitConn(listenUDP(t))
						c, peer = dialOn(t, sock, ln, clientTLS)
					}

					if err := c.CloseWithError(42, "bye"); err != nil {
						t.Fatal(err)
					}
					sock.exit()
					if c.(*session).conn.Context().Err() == nil {
						t.Error("CloseWithError returned before the QUIC connection was closed")
					}
					select {
					case <-peer.Context().Done():
					case <-time.After(time.Second):
						t.Fatal("the peer did not learn of the close within 1 s of the closing side's exit")
					}
					want := transport.SessionError{Code: 42, Reason: "bye", Remote: true}
					var se *transport.SessionError
					if cause := context.Cause(peer.Context()); !errors.As(cause, &se) || *se != want {
						t.Fatalf("peer's cause = %v, want %v", cause, &want)
					}
				})
			}
		})
	}
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

// dialOn dials ln over sock rather than over a socket of its own, and
// returns the client and the accepted server session.
func dialOn(tb testing.TB, sock net.PacketConn, ln *quicgo.Listener, clientTLS *tls.Config) (client, server transport.Session) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &quicgo.Transport{Conn: sock}
	tb.Cleanup(func() { _ = tr.Close() })
	tlsConf, err := ClientTLSConfig(clientTLS, ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := tr.Dial(ctx, ln.Addr(), tlsConf, DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	client = Wrap(conn)
	tb.Cleanup(func() { _ = client.CloseWithError(0, "") })
	accepted, err := ln.Accept(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	server = Wrap(accepted)
	tb.Cleanup(func() { _ = server.CloseWithError(0, "") })
	return client, server
}
