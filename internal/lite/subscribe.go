package lite

import (
	"fmt"
	"io"
	"time"

	"github.com/moqgo/moq/internal/wire"
)

// Subscribe opens a subscribe stream, asking for a track of a broadcast.
//
// Fields after Priority are carried from lite-03 on. MaxLatency travels as
// whole milliseconds (sub-millisecond parts are truncated); a received value
// too large for a time.Duration saturates at the largest whole millisecond.
type Subscribe struct {
	// ID names the subscription; GROUP headers of its data carry it.
	ID uint64
	// Broadcast is the broadcast path.
	Broadcast string
	// Track is the track name (never normalised).
	Track string
	// Priority is the subscriber's priority for the track.
	Priority uint8
	// Ordered asks for groups in sequence order rather than newest first.
	Ordered bool
	// MaxLatency is how far behind delivery may fall before old groups are
	// skipped; 0 means no limit.
	MaxLatency time.Duration
	// StartGroup is the first group wanted, if any.
	StartGroup OptGroup
	// EndGroup is the last group wanted, if any.
	EndGroup OptGroup
}

// AppendBody implements Message.
func (m *Subscribe) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() {
		return b, versionErr("SUBSCRIBE", v)
	}
	e := encoder{b: b, msg: "SUBSCRIBE"}
	e.varint(m.ID, "id")
	e.str(m.Broadcast, "broadcast")
	e.str(m.Track, "track")
	e.u8(m.Priority)
	if v >= Lite03 {
		appendDelivery(&e, m.Ordered, m.MaxLatency, m.StartGroup, m.EndGroup)
	}
	return e.result(b)
}

// DecodeBody implements Message. The ordered byte is read leniently: any
// non-zero value means true.
func (m *Subscribe) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() {
		return versionErr("SUBSCRIBE", v)
	}
	d := newDecoder(body, "SUBSCRIBE")
	*m = Subscribe{
		ID:        d.varint("id"),
		Broadcast: d.path("broadcast"),
		Track:     d.str("track"),
		Priority:  d.u8("priority"),
	}
	if v >= Lite03 {
		m.Ordered, m.MaxLatency, m.StartGroup, m.EndGroup = decodeDelivery(&d)
	}
	return d.finish()
}

// appendDelivery writes the lite-03 delivery fields shared by SUBSCRIBE,
// SUBSCRIBE_OK and SUBSCRIBE_UPDATE.
func appendDelivery(e *encoder, ordered bool, maxLatency time.Duration, start, end OptGroup) {
	e.bool(ordered)
	e.duration(maxLatency, "max_latency")
	e.group(start, "start_group")
	e.group(end, "end_group")
}

func decodeDelivery(d *decoder) (ordered bool, maxLatency time.Duration, start, end OptGroup) {
	return d.lenientBool("ordered"), d.duration("max_latency"), d.group("start_group"), d.group("end_group")
}

// SubscribeOk is the publisher's first reply on a subscribe stream. lite-01
// carries only Priority, lite-02 has an empty body, lite-03 and later carry
// every field.
type SubscribeOk struct {
	// Priority is the publisher's priority for the track.
	Priority uint8
	// Ordered reports whether groups are delivered in sequence order.
	Ordered bool
	// MaxLatency is the latency bound the publisher applies.
	MaxLatency time.Duration
	// StartGroup is the first group that will be delivered, if known.
	StartGroup OptGroup
	// EndGroup is the last group that will be delivered, if known.
	EndGroup OptGroup
}

// AppendBody implements Message.
func (m *SubscribeOk) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() {
		return b, versionErr("SUBSCRIBE_OK", v)
	}
	e := encoder{b: b, msg: "SUBSCRIBE_OK"}
	switch {
	case v == Lite01:
		e.u8(m.Priority)
	case v >= Lite03:
		e.u8(m.Priority)
		appendDelivery(&e, m.Ordered, m.MaxLatency, m.StartGroup, m.EndGroup)
	}
	return e.result(b)
}

// DecodeBody implements Message.
func (m *SubscribeOk) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() {
		return versionErr("SUBSCRIBE_OK", v)
	}
	d := newDecoder(body, "SUBSCRIBE_OK")
	*m = SubscribeOk{}
	switch {
	case v == Lite01:
		m.Priority = d.u8("priority")
	case v >= Lite03:
		m.Priority = d.u8("priority")
		m.Ordered, m.MaxLatency, m.StartGroup, m.EndGroup = decodeDelivery(&d)
	}
	return d.finish()
}

// SubscribeUpdate changes a subscription; the subscriber sends it on the
// subscribe stream after SUBSCRIBE. lite-01/02 carry only Priority (the Rust
// reference refuses the message before lite-03, the JavaScript one sends it).
type SubscribeUpdate struct {
	// Priority is the subscriber's new priority.
	Priority uint8
	// Ordered asks for groups in sequence order.
	Ordered bool
	// MaxLatency is the new latency bound; 0 means no limit.
	MaxLatency time.Duration
	// StartGroup is the first group wanted, if any.
	StartGroup OptGroup
	// EndGroup is the last group wanted, if any.
	EndGroup OptGroup
}

// AppendBody implements Message.
func (m *SubscribeUpdate) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() {
		return b, versionErr("SUBSCRIBE_UPDATE", v)
	}
	e := encoder{b: b, msg: "SUBSCRIBE_UPDATE"}
	e.u8(m.Priority)
	if v >= Lite03 {
		appendDelivery(&e, m.Ordered, m.MaxLatency, m.StartGroup, m.EndGroup)
	}
	return e.result(b)
}

// DecodeBody implements Message.
func (m *SubscribeUpdate) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() {
		return versionErr("SUBSCRIBE_UPDATE", v)
	}
	d := newDecoder(body, "SUBSCRIBE_UPDATE")
	*m = SubscribeUpdate{Priority: d.u8("priority")}
	if v >= Lite03 {
		m.Ordered, m.MaxLatency, m.StartGroup, m.EndGroup = decodeDelivery(&d)
	}
	return d.finish()
}

// SubscribeDrop tells the subscriber that the groups Start..End (inclusive)
// will not be delivered. lite-03 and later.
type SubscribeDrop struct {
	// Start is the first dropped group.
	Start uint64
	// End is the last dropped group.
	End uint64
	// Error is an application error code; 0 means the groups are simply
	// unavailable.
	Error uint64
}

// AppendBody implements Message.
func (m *SubscribeDrop) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() || v < Lite03 {
		return b, versionErr("SUBSCRIBE_DROP", v)
	}
	e := encoder{b: b, msg: "SUBSCRIBE_DROP"}
	e.varint(m.Start, "start")
	e.varint(m.End, "end")
	e.varint(m.Error, "error")
	return e.result(b)
}

// DecodeBody implements Message.
func (m *SubscribeDrop) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() || v < Lite03 {
		return versionErr("SUBSCRIBE_DROP", v)
	}
	d := newDecoder(body, "SUBSCRIBE_DROP")
	*m = SubscribeDrop{Start: d.varint("start"), End: d.varint("end"), Error: d.varint("error")}
	return d.finish()
}

// Subscribe reply discriminators, written before every reply on a subscribe
// stream from lite-03 on. lite-01/02 have no discriminator and only
// SUBSCRIBE_OK.
const (
	ResponseOk   uint64 = 0
	ResponseDrop uint64 = 1
)

// AppendSubscribeResponse appends one reply on a subscribe stream: exactly one
// of ok and drop must be non-nil. From lite-03 on the discriminator precedes
// the size-prefixed message; lite-01/02 cannot send SUBSCRIBE_DROP. On error
// it returns b unchanged.
func AppendSubscribeResponse(b []byte, ok *SubscribeOk, drop *SubscribeDrop, v Version) ([]byte, error) {
	if (ok == nil) == (drop == nil) {
		return b, fmt.Errorf("lite: subscribe response needs exactly one of OK and DROP: %w", wire.ErrInvalid)
	}
	if !v.IsLite() {
		return b, versionErr("subscribe response", v)
	}
	switch {
	case v < Lite03 && ok != nil:
		return AppendMessage(b, ok, v)
	case v < Lite03:
		return b, versionErr("SUBSCRIBE_DROP", v)
	case ok != nil:
		out, err := AppendMessage(wire.AppendVarint(b, ResponseOk), ok, v)
		if err != nil {
			return b, err
		}
		return out, nil
	default:
		out, err := AppendMessage(wire.AppendVarint(b, ResponseDrop), drop, v)
		if err != nil {
			return b, err
		}
		return out, nil
	}
}

// ReadSubscribeResponse reads one reply from a subscribe stream; exactly one
// of the results is non-nil on success. It returns io.EOF if the stream ended
// cleanly before the reply, and an error wrapping wire.ErrInvalid for an
// unknown discriminator.
func ReadSubscribeResponse(r *wire.Reader, v Version, maxSize int) (*SubscribeOk, *SubscribeDrop, error) {
	if !v.IsLite() {
		return nil, nil, versionErr("subscribe response", v)
	}
	kind := ResponseOk
	if v >= Lite03 {
		var err error
		if kind, err = r.ReadVarint(); err != nil {
			return nil, nil, err
		}
		if kind != ResponseOk && kind != ResponseDrop {
			return nil, nil, fmt.Errorf("lite: subscribe response type %d: %w", kind, wire.ErrInvalid)
		}
	}
	body, err := r.ReadMessage(maxSize)
	if err != nil {
		if v >= Lite03 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	if kind == ResponseDrop {
		drop := new(SubscribeDrop)
		if err := drop.DecodeBody(body, v); err != nil {
			return nil, nil, err
		}
		return nil, drop, nil
	}
	ok := new(SubscribeOk)
	if err := ok.DecodeBody(body, v); err != nil {
		return nil, nil, err
	}
	return ok, nil, nil
}
