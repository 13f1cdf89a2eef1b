package wire

import (
	"encoding/binary"
	"math/bits"
)

// Leading-ones varints (draft-ietf-moq-transport-17 §1.4.1): the number of
// leading 1 bits in the first byte gives the length. Lengths 1 to 6 carry
// 7, 14, 21, 28, 35 and 42 value bits; 0b11111110 is followed by 7 value bytes
// and 0b11111111 by 8. The prefix 0b1111110x is reserved. moq-lite never uses
// this form; the IETF draft-17 codec does.

// LOVarintLen returns the number of bytes AppendLOVarint uses for v: 1 to 6,
// 8 or 9.
func LOVarintLen(v uint64) int {
	switch {
	case v < 1<<42:
		// 7 value bits per byte up to 6 bytes.
		n := (bits.Len64(v) + 6) / 7
		return max(n, 1)
	case v < 1<<56:
		return 8
	default:
		return 9
	}
}

// AppendLOVarint appends the shortest leading-ones encoding of v to b. Every
// uint64 is encodable.
func AppendLOVarint(b []byte, v uint64) []byte {
	n := LOVarintLen(v)
	switch n {
	case 1:
		return append(b, byte(v))
	case 8:
		b = append(b, 0xfe)
		return append(b, byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	case 9:
		b = append(b, 0xff)
		return binary.BigEndian.AppendUint64(b, v)
	}
	prefix := byte(0xff << (9 - n))
	b = append(b, prefix|byte(v>>(8*(n-1))))
	for i := n - 2; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// ParseLOVarint decodes the leading-ones varint at the start of b and returns
// its value and length. Non-minimal encodings are accepted. It returns ErrShort
// if b ends early and ErrInvalid for the reserved 0b1111110x prefix.
func ParseLOVarint(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, ErrShort
	}
	ones := bits.LeadingZeros8(^b[0])
	switch {
	case ones == 6:
		return 0, 0, ErrInvalid
	case ones == 7:
		n = 8
	case ones == 8:
		n = 9
	default:
		n = ones + 1
		v = uint64(b[0] & (0xff >> n))
	}
	if len(b) < n {
		return 0, 0, ErrShort
	}
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n, nil
}
