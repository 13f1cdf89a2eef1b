package lite

import (
	"fmt"

	"github.com/moqgo/moq/internal/wire"
)

// Group is the header of a group stream, after the DataGroup type byte.
// Frames follow it, each a varint size and a payload, until FIN.
type Group struct {
	// SubscribeID is the ID of the SUBSCRIBE the group answers.
	SubscribeID uint64
	// Sequence is the group's sequence number.
	Sequence uint64
}

// AppendBody implements Message.
func (m *Group) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() {
		return b, versionErr("GROUP", v)
	}
	e := encoder{b: b, msg: "GROUP"}
	e.varint(m.SubscribeID, "subscribe")
	e.varint(m.Sequence, "sequence")
	return e.result(b)
}

// DecodeBody implements Message.
func (m *Group) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() {
		return versionErr("GROUP", v)
	}
	d := newDecoder(body, "GROUP")
	*m = Group{SubscribeID: d.varint("subscribe"), Sequence: d.varint("sequence")}
	return d.finish()
}

// AppendGroupHeader appends the start of a group stream: the DataGroup type
// byte and the size-prefixed GROUP. On error it returns b unchanged.
func AppendGroupHeader(b []byte, g *Group, v Version) ([]byte, error) {
	out, err := AppendMessage(append(b, byte(DataGroup)), g, v)
	if err != nil {
		return b, err
	}
	return out, nil
}

// AppendFrameHeader appends the varint size that precedes a frame payload of
// size bytes. Sizes above wire.MaxMessageSize are refused, as readers would.
func AppendFrameHeader(b []byte, size int) ([]byte, error) {
	if size < 0 || size > wire.MaxMessageSize {
		return b, fmt.Errorf("lite: frame of %d bytes: %w", size, wire.ErrTooLarge)
	}
	return wire.AppendVarint(b, uint64(size)), nil
}

// AppendFrame appends a whole frame: its size, then payload.
func AppendFrame(b, payload []byte) ([]byte, error) {
	b, err := AppendFrameHeader(b, len(payload))
	if err != nil {
		return b, err
	}
	return append(b, payload...), nil
}

// ReadFrameHeader reads the size of the next frame on a group stream, leaving
// the payload to be read with r.ReadFull. It returns io.EOF when the stream
// ended cleanly (the group is complete) and an error wrapping
// wire.ErrTooLarge for a size above maxSize (capped at wire.MaxMessageSize;
// maxSize <= 0 means that cap).
func ReadFrameHeader(r *wire.Reader, maxSize int) (int, error) {
	size, err := r.ReadVarint()
	if err != nil {
		return 0, err
	}
	limit := maxSize
	if limit <= 0 || limit > wire.MaxMessageSize {
		limit = wire.MaxMessageSize
	}
	if size > uint64(limit) {
		return 0, fmt.Errorf("lite: frame of %d bytes above %d: %w", size, limit, wire.ErrTooLarge)
	}
	return int(size), nil
}

// ReadFrame reads the next frame on a group stream and appends its payload to
// dst, reusing dst's capacity when it suffices. It returns io.EOF when the
// stream ended cleanly before the frame and io.ErrUnexpectedEOF when it ended
// inside it. On error it returns dst unchanged.
func ReadFrame(r *wire.Reader, dst []byte, maxSize int) ([]byte, error) {
	size, err := ReadFrameHeader(r, maxSize)
	if err != nil {
		return dst, err
	}
	return r.AppendN(dst, size)
}
