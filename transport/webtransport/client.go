package webtransport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/transport"
	moqquic "github.com/moqgo/moq/transport/quic"
)

// ErrRejected is returned by [Dial] when the server answered the session
// request with a non-2xx status; the response is returned alongside.
var ErrRejected = errors.New("webtransport: session rejected")

// Dial establishes a WebTransport session to rawURL ("https://host[:port]/path?query")
// on a new QUIC connection, which the session owns.
//
// protocols are offered in WT-Available-Protocols, most preferred first;
// Protocol reports the server's choice, "" if it made none. hdr adds request
// headers (such as Origin). tlsConf is not modified: a copy gets the "h3"
// ALPN and the server name handling of transport/quic's DialConn. The QUIC
// configuration is transport/quic's DefaultConfig.
//
// The response is returned whenever the server answered, also with
// ErrRejected for a non-2xx status.
func Dial(ctx context.Context, rawURL string, tlsConf *tls.Config, protocols []string, hdr http.Header) (transport.Session, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("webtransport: %w", err)
	}
	if u.Scheme != "https" || u.Hostname() == "" {
		return nil, nil, fmt.Errorf("webtransport: URL %q is not an https URL with a host", rawURL)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	} else {
		tlsConf = tlsConf.Clone()
	}
	tlsConf.NextProtos = []string{http3.NextProtoH3}

	conn, err := moqquic.DialConn(ctx, net.JoinHostPort(u.Hostname(), port), tlsConf, moqquic.DefaultConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("webtransport: %w", err)
	}
	fail := func(err error) error {
		_ = conn.CloseWithError(quicgo.ApplicationErrorCode(http3.ErrCodeNoError), "")
		return err
	}
	// Reading the response does not watch ctx: closing the connection
	// unblocks it.
	stop := context.AfterFunc(ctx, func() {
		_ = conn.CloseWithError(quicgo.ApplicationErrorCode(http3.ErrCodeRequestCanceled), "")
	})
	defer stop()

	tr := &wt.Transport{ApplicationProtocols: protocols}
	cc, err := tr.NewClientConn(conn)
	if err != nil {
		return nil, nil, fail(fmt.Errorf("webtransport: %w", err))
	}
	rsp, sess, err := cc.Dial(ctx, rawURL, hdr)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		if rsp != nil && (rsp.StatusCode < 200 || rsp.StatusCode > 299) {
			return nil, rsp, fail(fmt.Errorf("%w: status %d", ErrRejected, rsp.StatusCode))
		}
		return nil, rsp, fail(fmt.Errorf("webtransport: dial %s: %w", rawURL, err))
	}
	if !stop() {
		// ctx ended while the session was being established.
		_ = sess.CloseWithError(0, "")
		return nil, nil, fail(fmt.Errorf("webtransport: dial %s: %w", rawURL, context.Cause(ctx)))
	}
	return wrap(sess, conn, nil), rsp, nil
}
