package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// Decoder reads primitives from a complete message body held in memory. The
// zero value decodes an empty body. A Decoder is a small value meant to live
// on the caller's stack; it never copies the body except where a method says
// so.
type Decoder struct {
	b   []byte
	off int
}

// NewDecoder returns a Decoder positioned at the start of b.
func NewDecoder(b []byte) Decoder {
	return Decoder{b: b}
}

// Remaining returns the number of bytes not yet consumed.
func (d *Decoder) Remaining() int {
	return len(d.b) - d.off
}

// Finish returns ErrTrailing if any bytes remain, nil otherwise.
func (d *Decoder) Finish() error {
	if d.off != len(d.b) {
		return ErrTrailing
	}
	return nil
}

// Varint reads a QUIC varint (non-minimal forms accepted).
func (d *Decoder) Varint() (uint64, error) {
	v, n, err := ParseVarint(d.b[d.off:])
	if err != nil {
		return 0, err
	}
	d.off += n
	return v, nil
}

// LOVarint reads a leading-ones varint (draft-17 form).
func (d *Decoder) LOVarint() (uint64, error) {
	v, n, err := ParseLOVarint(d.b[d.off:])
	if err != nil {
		return 0, err
	}
	d.off += n
	return v, nil
}

// U8 reads one raw byte.
func (d *Decoder) U8() (uint8, error) {
	if d.off >= len(d.b) {
		return 0, ErrShort
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

// Bool reads one byte that must be 0x00 (false) or 0x01 (true); any other
// value is ErrInvalid.
func (d *Decoder) Bool() (bool, error) {
	c, err := d.U8()
	if err != nil {
		return false, err
	}
	switch c {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	d.off--
	return false, ErrInvalid
}

// U16 reads two big-endian bytes.
func (d *Decoder) U16() (uint16, error) {
	if len(d.b)-d.off < 2 {
		return 0, ErrShort
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v, nil
}

// Bytes returns the next n bytes. The result aliases the body: copy it if it
// must outlive the body's buffer.
func (d *Decoder) Bytes(n int) ([]byte, error) {
	if n < 0 {
		return nil, ErrInvalid
	}
	if len(d.b)-d.off < n {
		return nil, ErrShort
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p, nil
}

// VarBytes reads a varint length followed by that many bytes, which the
// result aliases like Bytes. A length above maxLen is ErrTooLarge.
func (d *Decoder) VarBytes(maxLen int) ([]byte, error) {
	start := d.off
	n, err := d.Varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(max(maxLen, 0)) {
		d.off = start
		return nil, ErrTooLarge
	}
	p, err := d.Bytes(int(n))
	if err != nil {
		d.off = start
		return nil, err
	}
	return p, nil
}

// String reads a varint length followed by that many bytes of UTF-8 and
// returns them as a new string. A length above maxLen is ErrTooLarge; bytes
// that are not valid UTF-8 are ErrInvalid.
func (d *Decoder) String(maxLen int) (string, error) {
	start := d.off
	p, err := d.VarBytes(maxLen)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(p) {
		d.off = start
		return "", ErrInvalid
	}
	return string(p), nil
}
