// Package qmux carries transport.Session over a WebSocket, interoperating with
// the npm package @moq/qmux: 0.0.6 (the WebSocket fallback of @moq/lite) and
// 0.3.x (used by @moq/net and the browser players built on it).
//
// Two framings exist, chosen by the WebSocket subprotocol: QMux draft-00
// ("qmux-00", QUIC frames with transport parameters and stream- and
// connection-level flow control) and the older "webtransport" framing (one-byte
// frame types, no flow control). Each WebSocket binary message carries exactly
// one frame. A subprotocol suffix after the framing name ("qmux-00.moq-lite-03")
// carries the application protocol, reported by Session.Protocol.
//
// The two @moq/qmux releases encode qmux-00 differently (see Layout): 0.3.x
// writes APPLICATION_CLOSE in the RFC 9000 layout, without the frame-type field
// 0.0.6 puts there, and STREAM frames with offsets. A session reads both. It
// writes like 0.0.6 until the peer's transport parameters, always its first
// frame, declare max_record_size, which 0.3.x always does and 0.0.6 never
// does; from then on it writes like 0.3.x, so that the peer reads our close
// code and reason. An APPLICATION_CLOSE is read in the layout of the peer
// unless only the other one accounts for the whole WebSocket message.
// CONNECTION_CLOSE (0x1c, also in the legacy framing from 0.3.x) ends the
// session with a *TransportError carrying the peer's code and reason;
// APPLICATION_CLOSE ends it with a *transport.SessionError.
//
// In qmux-00 a session declares the @moq/qmux defaults (1 MiB per connection,
// 256 KiB per stream, 100 bidirectional and 100 unidirectional streams) and
// grants more as the application reads and finishes streams. As in QUIC, unread
// data holds connection credit: read each stream to io.EOF or call CancelRead,
// and read streams concurrently. The legacy framing has no flow control; there
// the session stops reading the WebSocket while 16 MiB are left unread.
//
// A peer that breaks the protocol (a malformed or oversized frame, data beyond
// its credit, too many streams) ends the session with a *TransportError, which
// is also sent to it in a CONNECTION_CLOSE frame (in the legacy framing, an
// APPLICATION_CLOSE carrying the transport error code).
//
// A session closes itself when it has received nothing from the peer (no frame,
// no WebSocket ping or pong) for its idle timeout, 30 s by default; its cause
// then matches ErrIdleTimeout. While the session is quiet it sends WebSocket
// pings, which browsers and WebSocket libraries answer by themselves, so a
// healthy peer never times out (see AcceptOptions and DialOptions).
// CloseWithError returns once APPLICATION_CLOSE has been written and the
// WebSocket closed, or after 1 s if the peer does not read.
//
// Send priorities (SetPriority) are honoured: the single writer of a session
// always sends the pending data of the most urgent stream first, streams of
// equal urgency in the order they were opened.
package qmux

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/moqgo/moq/transport"
)

// Subprotocol names; an application protocol P is offered as "qmux-00.P" and
// "webtransport.P".
const (
	SubprotocolQMux00       = "qmux-00"
	SubprotocolWebTransport = "webtransport"
)

// Offer returns the Sec-WebSocket-Protocol values a client offers for the given
// application protocols, in preference order, as @moq/qmux does: "qmux-00",
// "webtransport", then "qmux-00.P" and "webtransport.P" for each P (an existing
// framing prefix on P is stripped first).
func Offer(protocols []string) []string {
	out := []string{SubprotocolQMux00, SubprotocolWebTransport}
	for _, p := range protocols {
		p = stripFraming(p)
		for _, o := range [...]string{SubprotocolQMux00 + "." + p, SubprotocolWebTransport + "." + p} {
			if !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	return out
}

func stripFraming(p string) string {
	if s, ok := strings.CutPrefix(p, SubprotocolQMux00+"."); ok {
		return s
	}
	if s, ok := strings.CutPrefix(p, SubprotocolWebTransport+"."); ok {
		return s
	}
	return p
}

// Select returns the subprotocol a server answers to a client offering offered,
// given its own application protocols in preference order: "qmux-00.P" for the
// first P the client offered that way, else bare "qmux-00" (the application then
// negotiates in-band), else the same two choices in the legacy framing, else ""
// (legacy framing, no subprotocol).
func Select(offered, protocols []string) string {
	return selectFraming(offered, protocols, nil)
}

// selectFraming is Select with the server's framing preference; nil means
// QMux00 then WebTransport.
func selectFraming(offered, protocols []string, framings []Framing) string {
	if len(framings) == 0 {
		framings = []Framing{QMux00, WebTransport}
	}
	for _, f := range framings {
		framing := SubprotocolQMux00
		if f == WebTransport {
			framing = SubprotocolWebTransport
		}
		for _, p := range protocols {
			if want := framing + "." + p; slices.Contains(offered, want) {
				return want
			}
		}
		if slices.Contains(offered, framing) {
			return framing
		}
	}
	return ""
}

// ParseSubprotocol splits a negotiated subprotocol into its framing and
// application protocol, as @moq/qmux does: anything that is not "qmux-00" or
// "qmux-00.P" uses the legacy framing.
func ParseSubprotocol(sub string) (Framing, string) {
	switch {
	case sub == SubprotocolQMux00:
		return QMux00, ""
	case strings.HasPrefix(sub, SubprotocolQMux00+"."):
		return QMux00, sub[len(SubprotocolQMux00)+1:]
	case strings.HasPrefix(sub, SubprotocolWebTransport+"."):
		return WebTransport, sub[len(SubprotocolWebTransport)+1:]
	default:
		return WebTransport, ""
	}
}

// offeredSubprotocols lists the tokens of the request's Sec-WebSocket-Protocol headers.
func offeredSubprotocols(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Offered reports whether r asks for a WebSocket upgrade, so that one HTTP
// handler can serve both WebSocket sessions and plain requests.
func Offered(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

// Accept upgrades r to a WebSocket and starts a server session on it, on whatever
// URL path the client used. protocols are the application protocols the server
// supports, most preferred first (see Select). Cross-origin requests are
// accepted. On failure an HTTP error has been written to w. The session has the
// default idle timeout and keep-alive period (see AcceptOptions).
func Accept(w http.ResponseWriter, r *http.Request, protocols []string) (transport.Session, error) {
	return AcceptWithOptions(w, r, protocols, nil)
}

// AcceptFramings is Accept with the server's framing preference, most
// preferred first (nil means QMux00, then WebTransport). As with Accept, a
// client that offers nothing acceptable gets the legacy framing without a
// subprotocol.
func AcceptFramings(w http.ResponseWriter, r *http.Request, protocols []string, framings []Framing) (transport.Session, error) {
	return AcceptWithOptions(w, r, protocols, &AcceptOptions{Framings: framings})
}

// AcceptOptions configures AcceptWithOptions; the zero value (or nil) gives
// what Accept does.
type AcceptOptions struct {
	// Framings is the server's framing preference, most preferred first (nil
	// means QMux00, then WebTransport), as for AcceptFramings.
	Framings []Framing
	// IdleTimeout closes the session when nothing (no frame, no WebSocket ping
	// or pong) has been received from the peer for this long; the session's
	// cause then matches ErrIdleTimeout. It starts with the upgrade, so it also
	// bounds a peer that connects and never speaks. Zero means
	// DefaultIdleTimeout (30 s), negative disables it. A qmux-00 peer that
	// declares a smaller max_idle_timeout lowers it.
	IdleTimeout time.Duration
	// KeepAlivePeriod is how long the session waits, having received nothing,
	// before it sends a WebSocket ping, which browsers and WebSocket libraries
	// answer by themselves: a healthy but quiet peer never reaches the idle
	// timeout. It is capped at half the idle timeout (ours or the peer's,
	// whichever is smaller). Zero means DefaultKeepAlivePeriod (10 s),
	// negative disables pings.
	KeepAlivePeriod time.Duration
}

// AcceptWithOptions is Accept with options; opts may be nil.
func AcceptWithOptions(w http.ResponseWriter, r *http.Request, protocols []string, opts *AcceptOptions) (transport.Session, error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	var subs []string
	if sel := selectFraming(offeredSubprotocols(r.Header), protocols, opts.Framings); sel != "" {
		subs = []string{sel}
	}
	live := resolveLiveness(opts.IdleTimeout, opts.KeepAlivePeriod)
	w, hijacked := recordHijack(w)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       subs,
		InsecureSkipVerify: true, // browsers connect from any origin
		OnPingReceived:     live.clock.onPing,
		OnPongReceived:     live.clock.onPong,
	})
	if err != nil {
		return nil, fmt.Errorf("qmux: %w", err)
	}
	if hijacked != nil {
		live.netConn = hijacked.conn
	}
	framing, proto := ParseSubprotocol(conn.Subprotocol())
	laddr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if laddr == nil {
		laddr = wsAddr(r.Host)
	}
	return newSession(conn, framing, proto, true, laddr, parseAddr(r.RemoteAddr), live), nil
}

// DialOptions configures Dial.
type DialOptions struct {
	// HTTPClient performs the upgrade request. When nil, a client using TLSConfig
	// is built for the call. With a custom client, the session's LocalAddr is
	// unknown (empty) and RemoteAddr is the URL's host.
	HTTPClient *http.Client
	// TLSConfig configures wss:// connections when HTTPClient is nil.
	TLSConfig *tls.Config
	// Header is added to the upgrade request (for example Authorization).
	Header http.Header
	// IdleTimeout and KeepAlivePeriod are as in AcceptOptions: zero means
	// DefaultIdleTimeout (30 s) and DefaultKeepAlivePeriod (10 s), negative
	// disables.
	IdleTimeout     time.Duration
	KeepAlivePeriod time.Duration
}

// Dial opens a client session to a ws://, wss://, http:// or https:// URL (http
// and https are rewritten to ws and wss). protocols are the application protocols
// to offer, most preferred first (see Offer); ctx bounds the handshake only.
func Dial(ctx context.Context, rawURL string, protocols []string, opts *DialOptions) (transport.Session, error) {
	s, err := dial(ctx, rawURL, Offer(protocols), opts)
	if err != nil {
		return nil, err // not a typed nil
	}
	return s, nil
}

// dial is Dial with an explicit list of subprotocols to offer.
func dial(ctx context.Context, rawURL string, offer []string, opts *DialOptions) (*session, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("qmux: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("qmux: unsupported URL scheme %q", u.Scheme)
	}
	if opts == nil {
		opts = &DialOptions{}
	}
	var addrs connAddrs
	live := resolveLiveness(opts.IdleTimeout, opts.KeepAlivePeriod)
	client := opts.HTTPClient
	if client == nil {
		dialer := &net.Dialer{}
		tr := &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			TLSClientConfig: opts.TLSConfig.Clone(),
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err == nil {
					addrs.set(c)
				}
				return c, err
			},
		}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	conn, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient:     client,
		HTTPHeader:     opts.Header,
		Subprotocols:   offer,
		OnPingReceived: live.clock.onPing,
		OnPongReceived: live.clock.onPong,
	})
	if err != nil {
		return nil, fmt.Errorf("qmux: %w", err)
	}
	framing, proto := ParseSubprotocol(conn.Subprotocol())
	nc := addrs.get()
	laddr, raddr := net.Addr(wsAddr("")), net.Addr(wsAddr(u.Host))
	if nc != nil {
		laddr, raddr = nc.LocalAddr(), nc.RemoteAddr()
		live.netConn = nc
	}
	return newSession(conn, framing, proto, false, laddr, raddr, live), nil
}

// connAddrs records the connection a Dial made, for its addresses and so that
// the session can cut it.
type connAddrs struct {
	mu   sync.Mutex
	conn net.Conn
}

func (a *connAddrs) set(c net.Conn) {
	a.mu.Lock()
	a.conn = c
	a.mu.Unlock()
}

func (a *connAddrs) get() net.Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conn
}

// wsAddr is an address known only as text.
type wsAddr string

func (a wsAddr) Network() string { return "websocket" }
func (a wsAddr) String() string  { return string(a) }

func parseAddr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return wsAddr(s)
}
