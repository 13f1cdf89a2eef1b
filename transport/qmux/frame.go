package qmux

import (
	"fmt"

	"github.com/moqgo/moq/internal/wire"
)

// Framing selects the wire encoding of frames, decided by the negotiated WebSocket
// subprotocol.
type Framing uint8

const (
	// QMux00 is draft-ietf-quic-qmux-00: QUIC frame encodings, transport parameters
	// and flow control (subprotocol "qmux-00" or "qmux-00.<protocol>").
	QMux00 Framing = iota + 1
	// WebTransport is the older framing of @moq/qmux: one-byte frame types and no
	// flow control (subprotocol "webtransport", "webtransport.<protocol>" or none).
	WebTransport
)

func (f Framing) String() string {
	switch f {
	case QMux00:
		return "qmux-00"
	case WebTransport:
		return "webtransport"
	default:
		return fmt.Sprintf("Framing(%d)", uint8(f))
	}
}

// Layout selects between the two encodings that releases of @moq/qmux use
// within one framing. Decoding accepts both (see ParseFrameLayout); the layout
// decides what is written, and which reading wins when an APPLICATION_CLOSE
// could be read either way.
type Layout uint8

const (
	// Layout006 is what @moq/qmux 0.0.6 writes, and what a session writes until
	// it learns otherwise: APPLICATION_CLOSE 0x1d carries a frame-type field
	// (code, frame type 0, reason length, reason), STREAM frames never carry an
	// offset (0x0a/0x0b), and the legacy framing has no CONNECTION_CLOSE.
	Layout006 Layout = iota
	// Layout03 is what @moq/qmux 0.3.x writes: APPLICATION_CLOSE 0x1d in the RFC
	// 9000 layout (code, reason length, reason; no frame-type field), STREAM
	// frames always with OFF and LEN (0x0e/0x0f) and the stream offset, and
	// CONNECTION_CLOSE as 0x1c in the legacy framing too.
	Layout03
)

func (l Layout) String() string {
	switch l {
	case Layout006:
		return "@moq/qmux 0.0.6"
	case Layout03:
		return "@moq/qmux 0.3"
	default:
		return fmt.Sprintf("Layout(%d)", uint8(l))
	}
}

// peerLayout returns the layout a qmux-00 peer writes, judged by its transport
// parameters: @moq/qmux 0.3.x always declares max_record_size (16382), which
// 0.0.6 and this package never declare.
func peerLayout(p *TransportParams) Layout {
	if p.MaxRecordSize != 0 {
		return Layout03
	}
	return Layout006
}

// Frame size limits shared with @moq/qmux.
const (
	// MaxFrameSize is the largest frame (one WebSocket message) a peer sends by default.
	MaxFrameSize = 16384
	// MaxStreamPayload is the largest STREAM payload; larger incoming payloads end
	// the session with FrameEncodingError.
	MaxStreamPayload = MaxFrameSize - 24
)

// Kind identifies a frame independently of its wire type.
type Kind uint8

// Frame kinds.
const (
	KindStream              Kind = iota + 1 // STREAM 0x08-0x0f (legacy 0x08/0x09)
	KindResetStream                         // RESET_STREAM 0x04
	KindStopSending                         // STOP_SENDING 0x05
	KindConnectionClose                     // CONNECTION_CLOSE 0x1c, a transport error (legacy framing: @moq/qmux 0.3.x only)
	KindApplicationClose                    // APPLICATION_CLOSE 0x1d (legacy CONNECTION_CLOSE 0x1d)
	KindMaxData                             // MAX_DATA 0x10
	KindMaxStreamData                       // MAX_STREAM_DATA 0x11
	KindMaxStreamsBidi                      // MAX_STREAMS 0x12
	KindMaxStreamsUni                       // MAX_STREAMS 0x13
	KindDataBlocked                         // DATA_BLOCKED 0x14
	KindStreamDataBlocked                   // STREAM_DATA_BLOCKED 0x15
	KindStreamsBlockedBidi                  // STREAMS_BLOCKED 0x16
	KindStreamsBlockedUni                   // STREAMS_BLOCKED 0x17
	KindTransportParameters                 // QX_TRANSPORT_PARAMETERS 0x3f5153300d0a0d0a
	KindIgnored                             // DATAGRAM or an unknown type: parsed and skipped
)

var kindNames = [...]string{
	KindStream:              "STREAM",
	KindResetStream:         "RESET_STREAM",
	KindStopSending:         "STOP_SENDING",
	KindConnectionClose:     "CONNECTION_CLOSE",
	KindApplicationClose:    "APPLICATION_CLOSE",
	KindMaxData:             "MAX_DATA",
	KindMaxStreamData:       "MAX_STREAM_DATA",
	KindMaxStreamsBidi:      "MAX_STREAMS_BIDI",
	KindMaxStreamsUni:       "MAX_STREAMS_UNI",
	KindDataBlocked:         "DATA_BLOCKED",
	KindStreamDataBlocked:   "STREAM_DATA_BLOCKED",
	KindStreamsBlockedBidi:  "STREAMS_BLOCKED_BIDI",
	KindStreamsBlockedUni:   "STREAMS_BLOCKED_UNI",
	KindTransportParameters: "QX_TRANSPORT_PARAMETERS",
	KindIgnored:             "IGNORED",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Wire frame types of qmux-00.
const (
	typeResetStream         = 0x04
	typeStopSending         = 0x05
	typeStream              = 0x08
	typeStreamFin           = 0x01
	typeStreamLen           = 0x02
	typeStreamOff           = 0x04
	typeMaxData             = 0x10
	typeMaxStreamData       = 0x11
	typeMaxStreamsBidi      = 0x12
	typeMaxStreamsUni       = 0x13
	typeDataBlocked         = 0x14
	typeStreamDataBlocked   = 0x15
	typeStreamsBlockedBidi  = 0x16
	typeStreamsBlockedUni   = 0x17
	typeConnectionClose     = 0x1c
	typeApplicationClose    = 0x1d
	typeDatagram            = 0x30
	typeDatagramLen         = 0x31
	typeTransportParameters = 0x3f5153300d0a0d0a
)

// Transport parameter ids written and understood (RFC 9000 §18.2, RFC 9221,
// draft-ietf-quic-qmux-01 and draft-ietf-quic-reliable-stream-reset).
const (
	paramMaxIdleTimeout                 = 0x01
	paramInitialMaxData                 = 0x04
	paramInitialMaxStreamDataBidiLocal  = 0x05
	paramInitialMaxStreamDataBidiRemote = 0x06
	paramInitialMaxStreamDataUni        = 0x07
	paramInitialMaxStreamsBidi          = 0x08
	paramInitialMaxStreamsUni           = 0x09
	paramResetStreamAt                  = 0x1d // a flag: present with an empty value
	paramMaxDatagramFrameSize           = 0x20
	paramMaxRecordSize                  = 0x0571c59429cd0845
)

// TransportParams are the limits an endpoint declares in its
// QX_TRANSPORT_PARAMETERS frame. Absent parameters are zero.
type TransportParams struct {
	// MaxIdleTimeout is max_idle_timeout (0x01) in milliseconds; zero means none.
	// @moq/qmux 0.3.x declares 30000; 0.0.6 and this package declare nothing.
	MaxIdleTimeout                 uint64
	InitialMaxData                 uint64
	InitialMaxStreamDataBidiLocal  uint64
	InitialMaxStreamDataBidiRemote uint64
	InitialMaxStreamDataUni        uint64
	InitialMaxStreamsBidi          uint64
	InitialMaxStreamsUni           uint64
	// MaxDatagramFrameSize is max_datagram_frame_size (0x20). @moq/qmux 0.3.x
	// declares it on qmux-01 and later only; sessions here send no datagrams.
	MaxDatagramFrameSize uint64
	// MaxRecordSize is max_record_size (0x0571c59429cd0845); zero when absent.
	// @moq/qmux 0.3.x always declares it (16382), on qmux-00 too, which is how a
	// session recognizes it (see Layout03).
	MaxRecordSize uint64
	// ResetStreamAt is the reset_stream_at flag (0x1d, an empty value), which
	// @moq/qmux 0.3.x declares on qmux-02 only.
	ResetStreamAt bool
}

// defaultTransportParams are the limits every session declares; they equal the
// defaults of @moq/qmux 0.0.6. max_idle_timeout is not declared, so the first
// frame stays byte-identical to that package's (the vectors pin it); the session
// enforces its idle timeout all the same, and honours a lower one the peer declares.
var defaultTransportParams = TransportParams{
	InitialMaxData:                 1 << 20,
	InitialMaxStreamDataBidiLocal:  256 << 10,
	InitialMaxStreamDataBidiRemote: 256 << 10,
	InitialMaxStreamDataUni:        256 << 10,
	InitialMaxStreamsBidi:          100,
	InitialMaxStreamsUni:           100,
}

// list returns the varint-valued parameters in the order @moq/qmux writes them.
func (p *TransportParams) list() [9]struct{ id, v uint64 } {
	return [9]struct{ id, v uint64 }{
		{paramMaxIdleTimeout, p.MaxIdleTimeout},
		{paramInitialMaxData, p.InitialMaxData},
		{paramInitialMaxStreamDataBidiLocal, p.InitialMaxStreamDataBidiLocal},
		{paramInitialMaxStreamDataBidiRemote, p.InitialMaxStreamDataBidiRemote},
		{paramInitialMaxStreamDataUni, p.InitialMaxStreamDataUni},
		{paramInitialMaxStreamsBidi, p.InitialMaxStreamsBidi},
		{paramInitialMaxStreamsUni, p.InitialMaxStreamsUni},
		{paramMaxDatagramFrameSize, p.MaxDatagramFrameSize},
		{paramMaxRecordSize, p.MaxRecordSize},
	}
}

func (p *TransportParams) appendTo(b []byte) []byte {
	for _, e := range p.list() {
		if e.v == 0 {
			continue // zero is the default: omitted, as @moq/qmux does
		}
		b = wire.AppendVarint(b, e.id)
		b = wire.AppendVarint(b, uint64(wire.VarintLen(e.v)))
		b = wire.AppendVarint(b, e.v)
	}
	if p.ResetStreamAt {
		b = wire.AppendVarint(b, paramResetStreamAt)
		b = wire.AppendVarint(b, 0)
	}
	return b
}

func parseTransportParams(p []byte) (TransportParams, error) {
	var tp TransportParams
	for len(p) > 0 {
		id, n, err := parseVarint(p)
		if err != nil {
			return tp, err
		}
		p = p[n:]
		size, n, err := parseVarint(p)
		if err != nil {
			return tp, err
		}
		p = p[n:]
		if size > uint64(len(p)) {
			return tp, fmt.Errorf("%w: transport parameter 0x%x truncated", FrameEncodingError, id)
		}
		value := p[:size]
		p = p[size:]
		var dst *uint64
		switch id {
		case paramResetStreamAt:
			tp.ResetStreamAt = true // its presence is the value
			continue
		case paramMaxIdleTimeout:
			dst = &tp.MaxIdleTimeout
		case paramInitialMaxData:
			dst = &tp.InitialMaxData
		case paramInitialMaxStreamDataBidiLocal:
			dst = &tp.InitialMaxStreamDataBidiLocal
		case paramInitialMaxStreamDataBidiRemote:
			dst = &tp.InitialMaxStreamDataBidiRemote
		case paramInitialMaxStreamDataUni:
			dst = &tp.InitialMaxStreamDataUni
		case paramInitialMaxStreamsBidi:
			dst = &tp.InitialMaxStreamsBidi
		case paramInitialMaxStreamsUni:
			dst = &tp.InitialMaxStreamsUni
		case paramMaxDatagramFrameSize:
			dst = &tp.MaxDatagramFrameSize
		case paramMaxRecordSize:
			dst = &tp.MaxRecordSize
		default:
			continue // unknown parameters are skipped
		}
		if len(value) == 0 {
			continue // an empty value keeps the default, as @moq/qmux does
		}
		v, n, err := parseVarint(value)
		if err != nil {
			return tp, err
		}
		if n != len(value) {
			return tp, fmt.Errorf("%w: transport parameter 0x%x has %d trailing bytes", FrameEncodingError, id, len(value)-n)
		}
		*dst = v
	}
	return tp, nil
}

// Frame is one decoded or to-be-encoded frame. Which fields are meaningful depends
// on Kind; the others are zero.
type Frame struct {
	Kind Kind
	// Type is the frame type as seen on the wire (set by ParseFrame; AppendFrame
	// derives the type from Kind and ignores it).
	Type uint64

	StreamID uint64 // STREAM, RESET_STREAM, STOP_SENDING, MAX_STREAM_DATA, STREAM_DATA_BLOCKED
	// Offset is the STREAM offset: zero when the frame has none. It is written in
	// Layout03 only. A session does not check it: frames arrive in order over the
	// WebSocket, and @moq/qmux 0.0.6 never sends one.
	Offset uint64
	// Data is the STREAM payload; ParseFrame returns a sub-slice of its input.
	Data []byte
	Fin  bool // STREAM

	// Code is the application error code (RESET_STREAM, STOP_SENDING,
	// APPLICATION_CLOSE) or the transport error code (CONNECTION_CLOSE).
	Code uint64
	// FinalSize of RESET_STREAM in qmux-00 (@moq/qmux 0.0.6 always writes 0,
	// 0.3.x the bytes it sent; it is reported but never trusted).
	FinalSize uint64
	Reason    string // APPLICATION_CLOSE, CONNECTION_CLOSE

	Max    uint64          // MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS
	Limit  uint64          // DATA_BLOCKED, STREAM_DATA_BLOCKED, STREAMS_BLOCKED
	Params TransportParams // QX_TRANSPORT_PARAMETERS
}

// AppendFrame appends the encoding of f in the given framing to b, in
// Layout006: qmux-00 STREAM frames carry a length and no offset, and
// APPLICATION_CLOSE carries a frame-type field. It fails for values that do not
// fit a varint and for frames the framing cannot carry.
func AppendFrame(b []byte, f *Frame, framing Framing) ([]byte, error) {
	return AppendFrameLayout(b, f, framing, Layout006)
}

// AppendFrameLayout is AppendFrame in the given layout. In Layout03, qmux-00
// STREAM frames carry f.Offset and a length (0x0e/0x0f), APPLICATION_CLOSE has no
// frame-type field, and the legacy framing can carry CONNECTION_CLOSE (0x1c).
func AppendFrameLayout(b []byte, f *Frame, framing Framing, layout Layout) ([]byte, error) {
	for _, v := range [...]uint64{f.StreamID, f.Offset, f.Code, f.FinalSize, f.Max, f.Limit} {
		if v > wire.MaxVarint {
			return b, fmt.Errorf("qmux: %v field %d exceeds 2^62-1", f.Kind, v)
		}
	}
	for _, e := range f.Params.list() {
		if e.v > wire.MaxVarint {
			return b, fmt.Errorf("qmux: transport parameter %d exceeds 2^62-1", e.v)
		}
	}
	if layout != Layout006 && layout != Layout03 {
		return b, fmt.Errorf("qmux: unknown layout %v", layout)
	}
	switch framing {
	case QMux00:
		return appendQMux(b, f, layout)
	case WebTransport:
		return appendLegacy(b, f, layout)
	default:
		return b, fmt.Errorf("qmux: unknown framing %v", framing)
	}
}

func appendQMux(b []byte, f *Frame, layout Layout) ([]byte, error) {
	switch f.Kind {
	case KindStream:
		t := uint64(typeStream | typeStreamLen)
		if layout == Layout03 {
			t |= typeStreamOff
		}
		if f.Fin {
			t |= typeStreamFin
		}
		b = wire.AppendVarint(b, t)
		b = wire.AppendVarint(b, f.StreamID)
		if layout == Layout03 {
			b = wire.AppendVarint(b, f.Offset)
		}
		b = wire.AppendVarint(b, uint64(len(f.Data)))
		return append(b, f.Data...), nil
	case KindResetStream:
		b = wire.AppendVarint(b, typeResetStream)
		b = wire.AppendVarint(b, f.StreamID)
		b = wire.AppendVarint(b, f.Code)
		return wire.AppendVarint(b, f.FinalSize), nil
	case KindStopSending:
		b = wire.AppendVarint(b, typeStopSending)
		b = wire.AppendVarint(b, f.StreamID)
		return wire.AppendVarint(b, f.Code), nil
	case KindConnectionClose, KindApplicationClose:
		t := uint64(typeApplicationClose)
		if f.Kind == KindConnectionClose {
			t = typeConnectionClose
		}
		b = wire.AppendVarint(b, t)
		b = wire.AppendVarint(b, f.Code)
		// The triggering frame type, always 0. RFC 9000 has it on 0x1c only;
		// @moq/qmux 0.0.6 writes it on 0x1d too.
		if f.Kind == KindConnectionClose || layout == Layout006 {
			b = wire.AppendVarint(b, 0)
		}
		b = wire.AppendVarint(b, uint64(len(f.Reason)))
		return append(b, f.Reason...), nil
	case KindMaxData:
		return wire.AppendVarint(wire.AppendVarint(b, typeMaxData), f.Max), nil
	case KindMaxStreamData:
		b = wire.AppendVarint(b, typeMaxStreamData)
		b = wire.AppendVarint(b, f.StreamID)
		return wire.AppendVarint(b, f.Max), nil
	case KindMaxStreamsBidi:
		return wire.AppendVarint(wire.AppendVarint(b, typeMaxStreamsBidi), f.Max), nil
	case KindMaxStreamsUni:
		return wire.AppendVarint(wire.AppendVarint(b, typeMaxStreamsUni), f.Max), nil
	case KindDataBlocked:
		return wire.AppendVarint(wire.AppendVarint(b, typeDataBlocked), f.Limit), nil
	case KindStreamDataBlocked:
		b = wire.AppendVarint(b, typeStreamDataBlocked)
		b = wire.AppendVarint(b, f.StreamID)
		return wire.AppendVarint(b, f.Limit), nil
	case KindStreamsBlockedBidi:
		return wire.AppendVarint(wire.AppendVarint(b, typeStreamsBlockedBidi), f.Limit), nil
	case KindStreamsBlockedUni:
		return wire.AppendVarint(wire.AppendVarint(b, typeStreamsBlockedUni), f.Limit), nil
	case KindTransportParameters:
		payload := f.Params.appendTo(nil)
		b = wire.AppendVarint(b, typeTransportParameters)
		b = wire.AppendVarint(b, uint64(len(payload)))
		return append(b, payload...), nil
	default:
		return b, fmt.Errorf("%w: cannot encode %v", ErrUnsupportedFrame, f.Kind)
	}
}

func appendLegacy(b []byte, f *Frame, layout Layout) ([]byte, error) {
	switch f.Kind {
	case KindStream:
		t := byte(typeStream)
		if f.Fin {
			t |= typeStreamFin
		}
		b = append(b, t)
		b = wire.AppendVarint(b, f.StreamID)
		return append(b, f.Data...), nil
	case KindResetStream:
		b = append(b, typeResetStream)
		b = wire.AppendVarint(b, f.StreamID)
		return wire.AppendVarint(b, f.Code), nil
	case KindStopSending:
		b = append(b, typeStopSending)
		b = wire.AppendVarint(b, f.StreamID)
		return wire.AppendVarint(b, f.Code), nil
	case KindApplicationClose, KindConnectionClose:
		t := byte(typeApplicationClose)
		if f.Kind == KindConnectionClose {
			if layout != Layout03 {
				return b, fmt.Errorf("%w: %v in the %v framing of %v", ErrUnsupportedFrame, f.Kind, WebTransport, layout)
			}
			t = typeConnectionClose
		}
		b = append(b, t)
		b = wire.AppendVarint(b, f.Code)
		return append(b, f.Reason...), nil
	default:
		return b, fmt.Errorf("%w: %v in the %v framing", ErrUnsupportedFrame, f.Kind, WebTransport)
	}
}

// ParseFrame decodes the frame at the start of p and returns it with the number of
// bytes it used; a session ignores anything after the frame in a WebSocket message,
// as @moq/qmux does. Errors wrap FrameEncodingError. DATAGRAM and unknown qmux-00
// frame types decode as KindIgnored; the legacy framing rejects unknown types.
// Both layouts are accepted, preferring Layout006 (see ParseFrameLayout).
func ParseFrame(p []byte, framing Framing) (Frame, int, error) {
	return ParseFrameLayout(p, framing, Layout006)
}

// ParseFrameLayout is ParseFrame for a peer expected to write the given layout.
// Every frame decodes the same in both layouts except a qmux-00 APPLICATION_CLOSE
// (0x1d), which @moq/qmux 0.0.6 writes with a frame-type field and 0.3.x without.
// Since p is expected to hold exactly one frame (one WebSocket message), such a
// frame is read in the expected layout if that reading uses all of p, else in the
// other layout if that one does; when neither uses all of p exactly, the first
// reading that succeeds wins, the expected one first. Only a reason phrase that
// itself starts with a varint length followed by exactly that many bytes can be
// read both ways; the expected layout then decides.
func ParseFrameLayout(p []byte, framing Framing, layout Layout) (Frame, int, error) {
	if len(p) == 0 {
		return Frame{}, 0, fmt.Errorf("%w: empty message", FrameEncodingError)
	}
	switch framing {
	case QMux00:
		return parseQMux(p, layout)
	case WebTransport:
		return parseLegacy(p)
	default:
		return Frame{}, 0, fmt.Errorf("qmux: unknown framing %v", framing)
	}
}

// reader is a cursor over one frame's bytes.
type reader struct {
	p   []byte
	off int
	err error
}

func (r *reader) varint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n, err := parseVarint(r.p[r.off:])
	if err != nil {
		r.err = err
		return 0
	}
	r.off += n
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.p)-r.off) {
		r.err = fmt.Errorf("%w: length %d exceeds the %d remaining bytes", FrameEncodingError, n, len(r.p)-r.off)
		return nil
	}
	b := r.p[r.off : r.off+int(n)]
	r.off += int(n)
	return b
}

func (r *reader) rest() []byte {
	if r.err != nil {
		return nil
	}
	b := r.p[r.off:]
	r.off = len(r.p)
	return b
}

func parseQMux(p []byte, layout Layout) (Frame, int, error) {
	r := &reader{p: p}
	t := r.varint()
	if r.err != nil {
		return Frame{}, 0, r.err
	}
	f := Frame{Type: t}
	switch {
	case t >= typeStream && t <= typeStream|typeStreamOff|typeStreamLen|typeStreamFin:
		f.Kind = KindStream
		f.StreamID = r.varint()
		if t&typeStreamOff != 0 {
			f.Offset = r.varint()
		}
		if t&typeStreamLen != 0 {
			f.Data = r.bytes(r.varint())
		} else {
			f.Data = r.rest()
		}
		f.Fin = t&typeStreamFin != 0
	case t == typeResetStream:
		f.Kind = KindResetStream
		f.StreamID = r.varint()
		f.Code = r.varint()
		f.FinalSize = r.varint()
	case t == typeStopSending:
		f.Kind = KindStopSending
		f.StreamID = r.varint()
		f.Code = r.varint()
	case t == typeConnectionClose:
		f.Kind = KindConnectionClose
		f.Code = r.varint()
		r.varint() // the triggering frame type
		f.Reason = string(r.bytes(r.varint()))
	case t == typeApplicationClose:
		f.Kind = KindApplicationClose
		f.Code, f.Reason, r.off, r.err = parseApplicationClose(p, r.off, layout)
	case t == typeMaxData:
		f.Kind = KindMaxData
		f.Max = r.varint()
	case t == typeMaxStreamData:
		f.Kind = KindMaxStreamData
		f.StreamID = r.varint()
		f.Max = r.varint()
	case t == typeMaxStreamsBidi:
		f.Kind = KindMaxStreamsBidi
		f.Max = r.varint()
	case t == typeMaxStreamsUni:
		f.Kind = KindMaxStreamsUni
		f.Max = r.varint()
	case t == typeDataBlocked:
		f.Kind = KindDataBlocked
		f.Limit = r.varint()
	case t == typeStreamDataBlocked:
		f.Kind = KindStreamDataBlocked
		f.StreamID = r.varint()
		f.Limit = r.varint()
	case t == typeStreamsBlockedBidi:
		f.Kind = KindStreamsBlockedBidi
		f.Limit = r.varint()
	case t == typeStreamsBlockedUni:
		f.Kind = KindStreamsBlockedUni
		f.Limit = r.varint()
	case t == typeTransportParameters:
		f.Kind = KindTransportParameters
		payload := r.bytes(r.varint())
		if r.err == nil {
			f.Params, r.err = parseTransportParams(payload)
		}
	case t == typeDatagram:
		f.Kind = KindIgnored
		r.rest()
	case t == typeDatagramLen:
		f.Kind = KindIgnored
		r.bytes(r.varint())
	default:
		f.Kind = KindIgnored // unknown types are skipped, as @moq/qmux does
		r.rest()
	}
	if r.err != nil {
		return Frame{}, 0, fmt.Errorf("%w (frame type 0x%x)", r.err, t)
	}
	return f, r.off, nil
}

// parseApplicationClose reads the body of a qmux-00 APPLICATION_CLOSE that
// starts at p[off:] and returns its code, its reason and where it ends, choosing
// the layout as ParseFrameLayout describes.
func parseApplicationClose(p []byte, off int, expected Layout) (code uint64, reason string, end int, err error) {
	type reading struct {
		code   uint64
		reason []byte
		end    int
		err    error
	}
	read := func(layout Layout) reading {
		r := &reader{p: p, off: off}
		code := r.varint()
		if layout == Layout006 {
			r.varint() // the frame-type field
		}
		reason := r.bytes(r.varint())
		return reading{code, reason, r.off, r.err}
	}
	other := Layout03
	if expected == Layout03 {
		other = Layout006
	}
	first, second := read(expected), read(other)
	best := first
	switch {
	case first.err == nil && first.end == len(p):
	case second.err == nil && second.end == len(p):
		best = second
	case first.err == nil:
	case second.err == nil:
		best = second
	}
	if best.err != nil {
		return 0, "", 0, best.err
	}
	return best.code, string(best.reason), best.end, nil
}

func parseLegacy(p []byte) (Frame, int, error) {
	t := p[0]
	r := &reader{p: p, off: 1}
	f := Frame{Type: uint64(t)}
	switch t {
	case typeStream, typeStream | typeStreamFin:
		f.Kind = KindStream
		f.StreamID = r.varint()
		f.Data = r.rest()
		f.Fin = t&typeStreamFin != 0
	case typeResetStream:
		f.Kind = KindResetStream
		f.StreamID = r.varint()
		f.Code = r.varint()
	case typeStopSending:
		f.Kind = KindStopSending
		f.StreamID = r.varint()
		f.Code = r.varint()
	case typeApplicationClose, typeConnectionClose:
		f.Kind = KindApplicationClose
		if t == typeConnectionClose { // written by @moq/qmux 0.3.x only
			f.Kind = KindConnectionClose
		}
		f.Code = r.varint()
		f.Reason = string(r.rest())
	default:
		return Frame{}, 0, fmt.Errorf("%w: unknown frame type 0x%x in the %v framing", FrameEncodingError, t, WebTransport)
	}
	if r.err != nil {
		return Frame{}, 0, fmt.Errorf("%w (frame type 0x%x)", r.err, t)
	}
	return f, r.off, nil
}
