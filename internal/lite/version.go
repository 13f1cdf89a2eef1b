// Package lite is the moq-lite engine, versions lite-01 to lite-04: a
// Session (session*.go) runs one negotiated connection on the model, and the
// codecs (the other files) encode and decode its wire messages, plus the
// compat CLIENT_SETUP/SERVER_SETUP exchange (IETF draft-14 layout) that
// lite-01/02 negotiate with. The engine reads peer bytes only through these
// codecs.
//
// Every message type has AppendBody, which appends the message body for a
// version, and DecodeBody, which parses exactly one body. On the wire a body
// is preceded by its varint size: use [AppendMessage] and [ReadMessage]. An
// encoder returns an error wrapping [ErrVersion] when the version cannot carry
// the message; fields a version cannot carry are dropped silently, as the
// reference implementations do (each field's comment says which versions
// carry it). Decoders never panic and reject trailing bytes.
//
// Integers are uint64 with the full QUIC varint range (2^62-1). Note that the
// reference JavaScript peer only accepts values up to 2^53-1 in most fields
// other than subscribe ids.
//
// Path-typed fields (broadcast paths, announce prefixes and suffixes) are
// normalised with path.Clean when decoded; encoders write them unchanged.
// Track names and GOAWAY URIs are never normalised.
package lite

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/moqgo/moq/internal/wire"
)

// ErrVersion reports a message, stream type or reply that the version in use
// cannot express, or a version this package does not implement.
var ErrVersion = errors.New("lite: not supported by this version")

// Version is a moq-lite version code as carried in SETUP version lists.
type Version uint64

// Known version codes.
const (
	Lite01 Version = 0xff0dad01
	Lite02 Version = 0xff0dad02
	Lite03 Version = 0xff0dad03
	Lite04 Version = 0xff0dad04
	// DraftIETF14 is the IETF moq-transport draft-14 code. It appears in the
	// compat SETUP version lists; this package has no codec for it.
	DraftIETF14 Version = 0xff00000e
)

// ALPN and WebTransport protocol names.
const (
	// ALPNSetup selects lite-01/02 (or IETF draft-14) by a compat SETUP
	// exchange. An empty protocol means the same.
	ALPNSetup = "moql"
	// ALPNLite03 selects lite-03 directly, without SETUP.
	ALPNLite03 = "moq-lite-03"
	// ALPNLite04 selects lite-04 directly, without SETUP.
	ALPNLite04 = "moq-lite-04"
)

// ALPNs returns the protocols this package supports, most preferred first.
func ALPNs() []string {
	return []string{ALPNLite04, ALPNLite03, ALPNSetup}
}

// VersionFromALPN returns the version an ALPN selects. It reports false for
// ALPNSetup (and anything unknown), where the version comes from SETUP.
func VersionFromALPN(alpn string) (Version, bool) {
	switch alpn {
	case ALPNLite03:
		return Lite03, true
	case ALPNLite04:
		return Lite04, true
	}
	return 0, false
}

// IsLite reports whether v is one of the moq-lite versions this package
// encodes.
func (v Version) IsLite() bool {
	return v >= Lite01 && v <= Lite04
}

// UsesSetup reports whether v is negotiated by the compat SETUP exchange
// (lite-01 and lite-02), whose stream then stays open as the session stream.
func (v Version) UsesSetup() bool {
	return v == Lite01 || v == Lite02
}

// ALPN returns the protocol name that selects v directly: "moq-lite-03" or
// "moq-lite-04", and "" for versions negotiated by SETUP or unknown.
func (v Version) ALPN() string {
	switch v {
	case Lite03:
		return ALPNLite03
	case Lite04:
		return ALPNLite04
	}
	return ""
}

// String returns "moq-lite-01" … "moq-lite-04", "moq-transport-14", or the
// hex code of an unknown version.
func (v Version) String() string {
	switch v {
	case Lite01:
		return "moq-lite-01"
	case Lite02:
		return "moq-lite-02"
	case Lite03:
		return "moq-lite-03"
	case Lite04:
		return "moq-lite-04"
	case DraftIETF14:
		return "moq-transport-14"
	}
	return "unknown(0x" + strconv.FormatUint(uint64(v), 16) + ")"
}

// ControlType is the varint a peer writes first on a bidirectional stream.
type ControlType uint64

// Control stream types.
const (
	// ControlSession is defined for lite-01/02 but never opened in practice:
	// the session stream is the one that carried the compat SETUP.
	ControlSession ControlType = 0
	// ControlAnnounce opens an announce stream (ANNOUNCE_INTEREST).
	ControlAnnounce ControlType = 1
	// ControlSubscribe opens a subscribe stream (SUBSCRIBE).
	ControlSubscribe ControlType = 2
	// ControlFetch opens a fetch stream (FETCH), lite-03 and later.
	ControlFetch ControlType = 3
	// ControlProbe opens a probe stream, lite-03 and later; the opener writes
	// nothing else and the peer answers with PROBE messages.
	ControlProbe ControlType = 4
	// ControlGoaway opens a goaway stream (GOAWAY), lite-04 and later.
	ControlGoaway ControlType = 5
	// ClientSetupType is the first varint of the compat setup stream
	// (lite-01/02), followed by CLIENT_SETUP with a 16-bit size. The setup
	// exchange precedes version negotiation, so Valid reports false.
	ClientSetupType ControlType = 0x20
	// ServerSetupType precedes the server's SERVER_SETUP reply on the setup
	// stream. It never opens a stream.
	ServerSetupType ControlType = 0x21
)

// String returns the stream type's name.
func (t ControlType) String() string {
	switch t {
	case ControlSession:
		return "session"
	case ControlAnnounce:
		return "announce"
	case ControlSubscribe:
		return "subscribe"
	case ControlFetch:
		return "fetch"
	case ControlProbe:
		return "probe"
	case ControlGoaway:
		return "goaway"
	case ClientSetupType:
		return "client_setup"
	case ServerSetupType:
		return "server_setup"
	}
	return "unknown(0x" + strconv.FormatUint(uint64(t), 16) + ")"
}

// Valid reports whether a peer speaking v may open a control stream of
// type t once the version is established.
func (t ControlType) Valid(v Version) bool {
	if !v.IsLite() {
		return false
	}
	switch t {
	case ControlSession:
		return v.UsesSetup()
	case ControlAnnounce, ControlSubscribe:
		return true
	case ControlFetch, ControlProbe:
		return v >= Lite03
	case ControlGoaway:
		return v >= Lite04
	}
	return false
}

// ReadControlType reads the stream type varint that starts a bidirectional
// stream and checks it against v. It returns io.EOF if the stream ended
// before any byte, an error wrapping ErrVersion for a type v does not allow
// and one wrapping wire.ErrInvalid for an unknown type.
func ReadControlType(r *wire.Reader, v Version) (ControlType, error) {
	x, err := r.ReadVarint()
	if err != nil {
		return 0, err
	}
	t := ControlType(x)
	if t.Valid(v) {
		return t, nil
	}
	switch t {
	case ControlSession, ControlAnnounce, ControlSubscribe, ControlFetch, ControlProbe, ControlGoaway, ClientSetupType, ServerSetupType:
		return t, fmt.Errorf("%w: %s stream in %s", ErrVersion, t, v)
	}
	return t, fmt.Errorf("lite: control stream type %s: %w", t, wire.ErrInvalid)
}

// DataGroup is the type that starts a group stream (a unidirectional stream):
// GROUP, then frames until FIN. The reference JavaScript peer writes it as a
// raw byte and the Rust one as a varint; for 0 both are the byte 0x00.
const DataGroup = 0

// ReadDataType reads the type byte of a unidirectional stream. It returns
// io.EOF if the stream ended before it, and an error wrapping wire.ErrInvalid
// for anything other than DataGroup.
func ReadDataType(r *wire.Reader) (byte, error) {
	c, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	if c != DataGroup {
		return c, fmt.Errorf("lite: data stream type 0x%x: %w", c, wire.ErrInvalid)
	}
	return c, nil
}
