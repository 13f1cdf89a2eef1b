// Package quic adapts quic-go connections to [transport.Session] for moq over
// raw QUIC, where the moq-lite version is negotiated with the TLS ALPN.
//
// The package is named quic after its directory; it imports quic-go under the
// name quicgo, and callers that need both usually do the same.
package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/moqgo/moq/transport"
	"github.com/moqgo/moq/transport/internal/quicadapt"
)

// DefaultConfig returns the quic-go configuration moq endpoints use: a 30 s
// idle timeout with 5 s keep-alives, 10000 concurrent streams of each kind
// (moq-lite opens a bidirectional stream per subscription and a
// unidirectional stream per group), and the DATAGRAM and
// RESET_STREAM_AT (EnableStreamResetPartialDelivery) extensions that
// WebTransport requires, so one listener can serve raw QUIC and WebTransport.
func DefaultConfig() *quicgo.Config {
	return &quicgo.Config{
		MaxIdleTimeout:                   30 * time.Second,
		KeepAlivePeriod:                  5 * time.Second,
		MaxIncomingStreams:               10000,
		MaxIncomingUniStreams:            10000,
		EnableDatagrams:                  true,
		EnableStreamResetPartialDelivery: true,
	}
}

// Dial opens a QUIC connection to addr ("host:port") and wraps it. The caller
// chooses the ALPNs in tlsConf.NextProtos; [transport.Session.Protocol] reports
// the one the server picked. See [DialConn] for the server name handling. A nil
// conf means [DefaultConfig].
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, conf *quicgo.Config) (transport.Session, error) {
	conn, err := DialConn(ctx, addr, tlsConf, conf)
	if err != nil {
		return nil, err
	}
	return Wrap(conn), nil
}

// DialConn is [Dial] without the wrapping, for protocols layered on QUIC.
//
// tlsConf is not modified. When its ServerName is empty, a copy gets the host
// part of addr, IP literals included, so the certificate is verified against
// that name or IP address SAN. Go's crypto/tls never puts an IP literal in the
// SNI extension (RFC 6066 forbids it), so dialing an IP address sends no SNI
// at all; servers then pick their default certificate, which is what the
// reference relay does when the SNI is missing.
func DialConn(ctx context.Context, addr string, tlsConf *tls.Config, conf *quicgo.Config) (*quicgo.Conn, error) {
	tlsConf, err := ClientTLSConfig(tlsConf, addr)
	if err != nil {
		return nil, err
	}
	if conf == nil {
		conf = DefaultConfig()
	}
	conn, err := quicgo.DialAddr(ctx, addr, tlsConf, conf)
	if err != nil {
		return nil, fmt.Errorf("quic: dial %s: %w", addr, err)
	}
	return conn, nil
}

// ClientTLSConfig returns a copy of tlsConf (or a new config when nil) whose
// ServerName is the host part of addr when it was empty. See [DialConn].
func ClientTLSConfig(tlsConf *tls.Config, addr string) (*tls.Config, error) {
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	} else {
		tlsConf = tlsConf.Clone()
	}
	if tlsConf.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("quic: address %q: %w", addr, err)
		}
		tlsConf.ServerName = host
	}
	return tlsConf, nil
}

// Wrap adapts an established quic-go connection. Protocol reports its
// negotiated ALPN. Closing the session closes the connection. The session's
// Context cause is the connection's close error translated by [MapError].
func Wrap(conn *quicgo.Conn) transport.Session {
	ctx, cancel := context.WithCancelCause(context.Background())
	context.AfterFunc(conn.Context(), func() {
		cancel(MapError(context.Cause(conn.Context())))
	})
	return &session{Streams: quicadapt.NewStreams(conn, &library), conn: conn, ctx: ctx}
}

// session adapts a quic-go connection; the embedded Streams adapt its
// streams.
type session struct {
	quicadapt.Streams
	conn *quicgo.Conn
	ctx  context.Context
}

// CloseWithError closes the connection and returns once Context is done.
// By then the peer has been told, so the process may exit: quic-go's
// Conn.CloseWithError returns only when the connection's run loop has ended,
// and that loop writes the CONNECTION_CLOSE to the socket synchronously
// (Conn.handleCloseError) before it cancels the connection's context; a
// connection dialed with DialAddr closes its UDP socket only after that. The
// wait is bounded by those socket writes: the few packets still queued, then
// the CONNECTION_CLOSE.
func (s *session) CloseWithError(code uint32, reason string) error {
	err := s.conn.CloseWithError(quicgo.ApplicationErrorCode(code), reason)
	<-s.ctx.Done()
	return err
}

func (s *session) Context() context.Context { return s.ctx }

func (s *session) Protocol() string {
	return s.conn.ConnectionState().TLS.NegotiatedProtocol
}

func (s *session) LocalAddr() net.Addr  { return s.conn.LocalAddr() }
func (s *session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// ConnectionStats implements [transport.Stats] from quic-go's statistics.
func (s *session) ConnectionStats() transport.ConnectionStats { return Stats(s.conn) }

// Stats converts the statistics of a quic-go connection.
func Stats(conn *quicgo.Conn) transport.ConnectionStats {
	st := conn.ConnectionStats()
	return transport.ConnectionStats{
		SmoothedRTT:      st.SmoothedRTT,
		MinRTT:           st.MinRTT,
		LatestRTT:        st.LatestRTT,
		CongestionWindow: st.CongestionWindow,
		BytesSent:        st.BytesSent,
		BytesReceived:    st.BytesReceived,
	}
}

// library adapts quic-go's streams: errors go through [MapError] and
// SetPriority through setPriority.
var library = quicadapt.Library[*quicgo.Stream, *quicgo.SendStream, quicgo.StreamErrorCode]{
	MapError:       MapError,
	SetPriority:    setPriority[*quicgo.Stream],
	SetUniPriority: setPriority[*quicgo.SendStream],
}

// setPriority sets the send urgency of a quic-go stream, in incremental mode.
func setPriority[S interface{ SetPriority(int8, bool) }](str S, urgency int) {
	str.SetPriority(clampUrgency(urgency), incremental)
}

// incremental makes streams of one urgency share it round-robin. quic-go's
// other mode, one stream at a time in stream ID order, stalls a whole
// urgency level behind a stream that Write re-queued after it ran out of
// flow-control credit (quic-go v0.64.1, v0.65.0): the packer keeps picking it
// and sends nothing. Round-robin moves on to the next stream.
const incremental = true

// clampUrgency maps the interface urgency onto RFC 9218's 0..7 before the
// int8 conversion, so out-of-range values cannot wrap around.
func clampUrgency(urgency int) int8 {
	return int8(max(0, min(urgency, 7)))
}

// MapError translates quic-go errors into the transport error types:
// *quicgo.StreamError becomes *[transport.StreamError] and
// *quicgo.ApplicationError becomes *[transport.SessionError]. Codes above
// math.MaxUint32 (QUIC allows 62 bits) saturate to math.MaxUint32. Other
// errors, including nil, io.EOF, idle timeouts and context errors, are
// returned unchanged.
func MapError(err error) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*quicgo.StreamError](err); ok {
		return &transport.StreamError{Code: saturate(uint64(se.ErrorCode)), Remote: se.Remote}
	}
	if ae, ok := errors.AsType[*quicgo.ApplicationError](err); ok {
		return &transport.SessionError{Code: saturate(uint64(ae.ErrorCode)), Reason: ae.ErrorMessage, Remote: ae.Remote}
	}
	return err
}

func saturate(code uint64) uint32 {
	return uint32(min(code, math.MaxUint32))
}

var (
	_ transport.Session = (*session)(nil)
	_ transport.Stats   = (*session)(nil)
)
