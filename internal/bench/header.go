package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The first frame of every group a bench publisher sends starts with a
// header, so that any subscriber can measure end-to-end latency and notice
// groups that never arrived:
//
//	magic     4 bytes  "MQB1"
//	publisher 8 bytes  big-endian id of the publishing track, unique in a run
//	sequence  8 bytes  big-endian group sequence
//	sent      8 bytes  big-endian send time, nanoseconds since the Unix epoch
//
// The rest of the frame is filler up to the configured frame size.

// HeaderSize is the encoded size of a Header.
const HeaderSize = 28

var headerMagic = [4]byte{'M', 'Q', 'B', '1'}

// ErrHeader reports a first frame without a valid bench header.
var ErrHeader = errors.New("bench: bad group header")

// Header is what the first frame of a bench group carries.
type Header struct {
	Publisher uint64
	Sequence  uint64
	Sent      time.Time
}

// AppendHeader appends h's encoding to b.
func AppendHeader(b []byte, h Header) []byte {
	b = append(b, headerMagic[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Publisher)
	b = binary.BigEndian.AppendUint64(b, h.Sequence)
	return binary.BigEndian.AppendUint64(b, uint64(h.Sent.UnixNano()))
}

// ParseHeader decodes the header at the start of frame; bytes after it are
// ignored.
func ParseHeader(frame []byte) (Header, error) {
	if len(frame) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrHeader, len(frame), HeaderSize)
	}
	if [4]byte(frame[:4]) != headerMagic {
		return Header{}, fmt.Errorf("%w: wrong magic %q", ErrHeader, frame[:4])
	}
	return Header{
		Publisher: binary.BigEndian.Uint64(frame[4:]),
		Sequence:  binary.BigEndian.Uint64(frame[12:]),
		Sent:      time.Unix(0, int64(binary.BigEndian.Uint64(frame[20:]))),
	}, nil
}
