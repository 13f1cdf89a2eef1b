// Package wire holds the byte-level primitives shared by the moq codecs: QUIC
// variable-length integers (RFC 9000 §16), the leading-ones integers of
// draft-ietf-moq-transport-17, length-prefixed strings, a [Decoder] over a
// message body and a buffered stream [Reader].
//
// Append functions follow the strconv.AppendInt style: they append to b and
// return the extended slice, so callers can reuse buffers and avoid
// allocations on hot paths.
package wire

import (
	"encoding/binary"
	"errors"
)

// Sentinel errors. Functions in this package return them directly or wrapped
// with context; test with errors.Is.
var (
	// ErrShort reports input that ends in the middle of a value.
	ErrShort = errors.New("wire: truncated input")
	// ErrTrailing reports bytes left over after a complete message.
	ErrTrailing = errors.New("wire: trailing bytes after message")
	// ErrInvalid reports a value that is malformed or out of range, such as a
	// bool byte other than 0 or 1.
	ErrInvalid = errors.New("wire: invalid value")
	// ErrTooLarge reports a size or count above the applicable limit.
	ErrTooLarge = errors.New("wire: value exceeds limit")
)

// IsDecodeError reports whether err comes from malformed input: it wraps
// ErrShort, ErrTrailing, ErrInvalid or ErrTooLarge.
func IsDecodeError(err error) bool {
	return errors.Is(err, ErrShort) || errors.Is(err, ErrTrailing) ||
		errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge)
}

// MaxVarint is the largest value a QUIC varint can hold (2^62-1).
const MaxVarint = 1<<62 - 1

// MaxMessageSize is the largest message or frame body, in bytes, the readers
// accept (64 MiB, the limit of the reference JavaScript client).
const MaxMessageSize = 64 << 20

// VarintLen returns the number of bytes AppendVarint uses for v: 1, 2, 4 or 8.
// It panics if v > MaxVarint.
func VarintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	case v <= MaxVarint:
		return 8
	}
	panic("wire: varint value exceeds MaxVarint")
}

// AppendVarint appends the shortest QUIC varint encoding of v to b. It panics
// if v > MaxVarint: callers must validate values that come from outside the
// program before encoding them.
func AppendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, 0x40|byte(v>>8), byte(v))
	case v < 1<<30:
		return binary.BigEndian.AppendUint32(b, 0x80<<24|uint32(v))
	case v <= MaxVarint:
		return binary.BigEndian.AppendUint64(b, 0xc0<<56|v)
	}
	panic("wire: varint value exceeds MaxVarint")
}

// ParseVarint decodes the QUIC varint at the start of b and returns its value
// and length. Non-minimal encodings are accepted. It returns ErrShort if b
// ends before the varint does.
func ParseVarint(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, ErrShort
	}
	n = 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0, ErrShort
	}
	switch n {
	case 1:
		v = uint64(b[0])
	case 2:
		v = uint64(binary.BigEndian.Uint16(b)) & (1<<14 - 1)
	case 4:
		v = uint64(binary.BigEndian.Uint32(b)) & (1<<30 - 1)
	default:
		v = binary.BigEndian.Uint64(b) & MaxVarint
	}
	return v, n, nil
}

// AppendU16 appends v as two big-endian bytes.
func AppendU16(b []byte, v uint16) []byte {
	return binary.BigEndian.AppendUint16(b, v)
}

// AppendBool appends 0x01 for true and 0x00 for false.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendString appends the varint byte length of s followed by its bytes.
func AppendString(b []byte, s string) []byte {
	b = AppendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBytes appends the varint length of p followed by p.
func AppendBytes(b, p []byte) []byte {
	b = AppendVarint(b, uint64(len(p)))
	return append(b, p...)
}
