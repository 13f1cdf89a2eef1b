package quic

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"github.com/moqgo/moq/internal/selfsign"
	"github.com/moqgo/moq/transport"
	"github.com/moqgo/moq/transport/transporttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	return selfsign.Default(time.Now())
})

// certPool returns a pool trusting cert.
func certPool(cert tls.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return pool
}

type endpoint struct {
	cert   tls.Certificate
	alpns  []string
	onSNI  func(string)
	config *quicgo.Config
	// socket, if not nil, wraps the listener's UDP socket.
	socket func(*net.UDPConn) net.PacketConn
}

// listen starts a loopback listener closed at the end of the test.
func listen(tb testing.TB, ep endpoint) *quicgo.Listener {
	tb.Helper()
	tlsConf := &tls.Config{Certificates: []tls.Certificate{ep.cert}, NextProtos: ep.alpns}
	if ep.onSNI != nil {
		tlsConf.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			ep.onSNI(hello.ServerName)
			return nil, nil
		}
	}
	conf := ep.config
	if conf == nil {
		conf = DefaultConfig()
	}
	// An explicit Transport lets the cleanup stop every server goroutine
	// synchronously, including those of connections still draining.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	var pc net.PacketConn = udp
	if ep.socket != nil {
		pc = ep.socket(udp)
	}
	tr := &quicgo.Transport{Conn: pc}
	ln, err := tr.Listen(tlsConf, conf)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ln.Close()
		tr.Close()
		udp.Close()
	})
	return ln
}

// connect dials ln at addr and returns the client and the accepted server session.
func connect(tb testing.TB, ln *quicgo.Listener, addr string, clientTLS *tls.Config) (client, server transport.Session, err error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		conn *quicgo.Conn
		err  error
	}
	accepted := make(chan result, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		accepted <- result{conn, err}
	}()
	client, err = Dial(ctx, addr, clientTLS, nil)
	if err != nil {
		cancel()
		<-accepted
		return nil, nil, err
	}
	tb.Cleanup(func() { _ = client.CloseWithError(0, "") })
	r := <-accepted
	if r.err != nil {
		return nil, nil, fmt.Errorf("accept: %w", r.err)
	}
	server = Wrap(r.conn)
	tb.Cleanup(func() { _ = server.CloseWithError(0, "") })
	return client, server, nil
}

func pair(tb testing.TB) (client, server transport.Session) {
	cert, err := testCert()
	if err != nil {
		tb.Fatal(err)
	}
	ln := listen(tb, endpoint{cert: cert, alpns: []string{"moq-lite-03"}})
	client, server, err = connect(tb, ln, ln.Addr().String(), &tls.Config{
		RootCAs:    certPool(cert),
		NextProtos: []string{"moq-lite-03"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return client, server
}

func TestConformance(t *testing.T) {
	transporttest.Run(t, pair)
}

func TestProtocol(t *testing.T) {
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		client, server []string
		want           string
		wantErr        bool
	}{
		{"server picks its preference among offers", []string{"moq-lite-04", "moq-lite-03", "moql"}, []string{"moq-lite-03", "moql"}, "moq-lite-03", false},
		{"single common", []string{"moql"}, []string{"moq-lite-04", "moql"}, "moql", false},
		{"no common protocol", []string{"moq-lite-04"}, []string{"moq-lite-03"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t, endpoint{cert: cert, alpns: tc.server})
			client, server, err := connect(t, ln, ln.Addr().String(), &tls.Config{RootCAs: certPool(cert), NextProtos: tc.client})
			if tc.wantErr {
				if err == nil {
					t.Fatal("handshake without a common ALPN succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if client.Protocol() != tc.want || server.Protocol() != tc.want {
				t.Fatalf("Protocol() = %q (client), %q (server); want %q", client.Protocol(), server.Protocol(), tc.want)
			}
			// The client socket is unconnected and bound to the wildcard
			// address, so only the ports match.
			if got, want := port(t, client.LocalAddr()), port(t, server.RemoteAddr()); got != want {
				t.Errorf("client LocalAddr %s and server RemoteAddr %s differ in port", client.LocalAddr(), server.RemoteAddr())
			}
			if got, want := client.RemoteAddr().String(), server.LocalAddr().String(); got != want {
				t.Errorf("client RemoteAddr %s != server LocalAddr %s", got, want)
			}
		})
	}
}

// TestServerName checks the SNI actually sent and that an IP address dial
// verifies against the certificate's IP SAN.
func TestServerName(t *testing.T) {
	ipOnly, err := selfsign.Generate([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dnsOnly, err := selfsign.Generate([]string{"localhost"}, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		cert       tls.Certificate
		host       string // dialed host
		serverName string // preset tls.Config.ServerName
		wantSNI    string
		wantErr    bool
	}{
		// crypto/tls never sends an IP literal as SNI; verification still
		// uses the IP because ServerName is set to it.
		{"ip literal verifies against IP SAN", ipOnly, "127.0.0.1", "", "", false},
		{"ip literal against DNS-only cert fails", dnsOnly, "127.0.0.1", "", "", true},
		{"host name is sent as SNI", dnsOnly, "localhost", "", "localhost", false},
		{"explicit ServerName wins", dnsOnly, "127.0.0.1", "localhost", "localhost", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sni := make(chan string, 1)
			ln := listen(t, endpoint{cert: tc.cert, alpns: []string{"moql"}, onSNI: func(s string) {
				select {
				case sni <- s:
				default:
				}
			}})
			clientTLS := &tls.Config{RootCAs: certPool(tc.cert), NextProtos: []string{"moql"}, ServerName: tc.serverName}
			_, _, err := connect(t, ln, net.JoinHostPort(tc.host, port(t, ln.Addr())), clientTLS)
			if clientTLS.ServerName != tc.serverName {
				t.Errorf("Dial modified the caller's tls.Config: ServerName = %q", clientTLS.ServerName)
			}
			if tc.wantErr {
				var verr *tls.CertificateVerificationError
				if !errors.As(err, &verr) {
					t.Fatalf("Dial error = %v, want a certificate verification error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			select {
			case got := <-sni:
				if got != tc.wantSNI {
					t.Errorf("server saw SNI %q, want %q", got, tc.wantSNI)
				}
			default:
				t.Error("server saw no ClientHello")
			}
		})
	}
}

func port(t *testing.T, addr net.Addr) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClientTLSConfig(t *testing.T) {
	tests := []struct {
		name    string
		in      *tls.Config
		addr    string
		want    string
		wantErr bool
	}{
		{"nil config, ipv4", nil, "127.0.0.1:443", "127.0.0.1", false},
		{"ipv6 literal", &tls.Config{}, "[::1]:4443", "::1", false},
		{"host name", &tls.Config{}, "relay.example:443", "relay.example", false},
		{"preset name kept", &tls.Config{ServerName: "cdn.example"}, "127.0.0.1:443", "cdn.example", false},
		{"missing port", &tls.Config{}, "relay.example", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ClientTLSConfig(tc.in, tc.addr)
			if tc.wantErr {
				if err == nil {
					t.Fatal("expected an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ServerName != tc.want {
				t.Errorf("ServerName = %q, want %q", got.ServerName, tc.want)
			}
			if tc.in != nil && got == tc.in {
				t.Error("ClientTLSConfig returned the caller's config instead of a copy")
			}
		})
	}
}

func TestMapError(t *testing.T) {
	tests := []struct {
		name string
		in   error
		want error
	}{
		{"nil", nil, nil},
		{"eof", io.EOF, io.EOF},
		{"context", context.Canceled, context.Canceled},
		{"remote stream reset", &quicgo.StreamError{StreamID: 4, ErrorCode: 9, Remote: true}, &transport.StreamError{Code: 9, Remote: true}},
		{"local stream reset", &quicgo.StreamError{ErrorCode: 1}, &transport.StreamError{Code: 1}},
		{"wrapped stream reset", fmt.Errorf("ctx: %w", &quicgo.StreamError{ErrorCode: 2, Remote: true}), &transport.StreamError{Code: 2, Remote: true}},
		{"oversized stream code saturates", &quicgo.StreamError{ErrorCode: 1 << 40}, &transport.StreamError{Code: math.MaxUint32}},
		{"remote close", &quicgo.ApplicationError{ErrorCode: 3, ErrorMessage: "bye", Remote: true}, &transport.SessionError{Code: 3, Reason: "bye", Remote: true}},
		{"oversized close code saturates", &quicgo.ApplicationError{ErrorCode: math.MaxUint32 + 1}, &transport.SessionError{Code: math.MaxUint32}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MapError(tc.in)
			switch want := tc.want.(type) {
			case *transport.StreamError:
				se, ok := got.(*transport.StreamError)
				if !ok || *se != *want {
					t.Fatalf("MapError(%v) = %#v, want %#v", tc.in, got, want)
				}
			case *transport.SessionError:
				se, ok := got.(*transport.SessionError)
				if !ok || *se != *want {
					t.Fatalf("MapError(%v) = %#v, want %#v", tc.in, got, want)
				}
			default:
				if got != tc.want {
					t.Fatalf("MapError(%v) = %v, want %v", tc.in, got, tc.want)
				}
			}
		})
	}
}

func TestClampUrgency(t *testing.T) {
	for _, tc := range []struct {
		in   int
		want int8
	}{{-5, 0}, {0, 0}, {3, 3}, {7, 7}, {8, 7}, {300, 7}, {math.MinInt, 0}, {math.MaxInt, 7}} {
		if got := clampUrgency(tc.in); got != tc.want {
			t.Errorf("clampUrgency(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if !c.EnableDatagrams || !c.EnableStreamResetPartialDelivery {
		t.Error("DefaultConfig must enable datagrams and stream reset partial delivery for WebTransport")
	}
	if c.KeepAlivePeriod <= 0 || c.KeepAlivePeriod >= c.MaxIdleTimeout {
		t.Errorf("KeepAlivePeriod %v must be positive and below MaxIdleTimeout %v", c.KeepAlivePeriod, c.MaxIdleTimeout)
	}
	if c.MaxIncomingUniStreams < 1000 || c.MaxIncomingStreams < 100 {
		t.Errorf("stream limits too low: bidi %d, uni %d", c.MaxIncomingStreams, c.MaxIncomingUniStreams)
	}
	if DefaultConfig() == c {
		t.Error("DefaultConfig returned a shared value")
	}
}

// TestBlockedStreamDoesNotStallOthers fills many streams of one urgency past
// the peer's stream window and never reads them, then sends short streams
// at the same urgency: they must all arrive. quic-go (v0.64/v0.65) can put a
// stream that is already blocked on stream flow control back into its send
// queue when Write races the packer; in quic-go's non-incremental mode that
// stream then sits at the head of its urgency level and starves every
// stream opened after it.
func TestBlockedStreamDoesNotStallOthers(t *testing.T) {
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	conf := DefaultConfig()
	conf.InitialStreamReceiveWindow = 1 << 10
	conf.MaxStreamReceiveWindow = 1 << 10
	conf.InitialConnectionReceiveWindow = 64 << 20
	conf.MaxConnectionReceiveWindow = 64 << 20
	ln := listen(t, endpoint{cert: cert, alpns: []string{"moql"}, config: conf})
	client, server, err := connect(t, ln, ln.Addr().String(), &tls.Config{RootCAs: certPool(cert), NextProtos: []string{"moql"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	const blocked, followers = 300, 20
	var writers sync.WaitGroup
	defer writers.Wait()
	for range blocked {
		st, err := client.OpenUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.SetPriority(7)
		defer st.CancelWrite(0)
		writers.Go(func() {
			// A small write makes the stream active, the large one then
			// runs into the 1 KiB window while the first is being sent.
			if _, err := st.Write([]byte("header")); err != nil {
				return
			}
			_, _ = st.Write(make([]byte, 8<<10))
		})
	}
	for range followers {
		st, err := client.OpenUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.SetPriority(7)
		writers.Go(func() {
			if _, err := st.Write([]byte("follower")); err == nil {
				_ = st.Close()
			}
		})
	}
	missing := func(accepted int) int { return blocked + followers - max(accepted, blocked) }
	for i := range blocked + followers {
		st, err := server.AcceptUniStream(ctx)
		if err != nil {
			t.Fatalf("accepted %d of %d streams: %v; %d followers stalled behind a blocked stream", i, blocked+followers, err, missing(i))
		}
		if i < blocked {
			continue // never read: it stays blocked on its window
		}
		got, err := io.ReadAll(st)
		if err != nil || string(got) != "follower" {
			t.Fatalf("follower stream = %q, %v; %d followers still missing", got, err, missing(i))
		}
	}
}

// TestIdleTimeoutCause checks that a session that dies without a close code
// reports quic-go's error rather than a SessionError.
func TestIdleTimeoutCause(t *testing.T) {
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	conf := DefaultConfig()
	conf.MaxIdleTimeout = 200 * time.Millisecond
	conf.KeepAlivePeriod = 0
	ln := listen(t, endpoint{cert: cert, alpns: []string{"moql"}, config: conf})
	_, server, err := connect(t, ln, ln.Addr().String(), &tls.Config{RootCAs: certPool(cert), NextProtos: []string{"moql"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-server.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("idle session did not time out")
	}
	cause := context.Cause(server.Context())
	var idle *quicgo.IdleTimeoutError
	if !errors.As(cause, &idle) {
		t.Fatalf("cause = %v (%T), want *quic.IdleTimeoutError", cause, cause)
	}
	var se *transport.SessionError
	if errors.As(cause, &se) {
		t.Fatalf("idle timeout reported as %v", se)
	}
}

func BenchmarkLoopbackThroughput(b *testing.B) {
	for _, streams := range []int{1, 100} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			transporttest.Throughput(b, pair, streams, 32<<10)
		})
	}
}
