package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
)

// readerBufferSize is the read-ahead buffer of a Reader. Reads of at least
// this many bytes bypass the buffer and go straight into the caller's slice.
const readerBufferSize = 4 << 10

// growChunk bounds how much memory a message read commits ahead of the data
// actually arriving, so a peer announcing a huge size cannot make us allocate
// it up front.
const growChunk = 64 << 10

// Reader is a buffered reader of moq stream primitives. It is not safe for
// concurrent use. Reader does not take a context: a blocked read is
// interrupted by cancelling or closing the underlying stream, which the
// stream's owner does when its context ends.
type Reader struct {
	br *bufio.Reader
}

// NewReader returns a Reader that buffers reads from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, readerBufferSize)}
}

// Buffered returns the number of bytes already read from the underlying
// reader but not yet consumed.
func (r *Reader) Buffered() int {
	return r.br.Buffered()
}

// ReadByte reads one byte. It returns io.EOF at the end of the stream.
func (r *Reader) ReadByte() (byte, error) {
	return r.br.ReadByte()
}

// ReadVarint reads one QUIC varint. It returns io.EOF if the stream ended
// cleanly before the first byte and io.ErrUnexpectedEOF if it ended inside
// the varint.
func (r *Reader) ReadVarint() (uint64, error) {
	c, err := r.br.ReadByte()
	if err != nil {
		return 0, err
	}
	n := 1 << (c >> 6)
	v := uint64(c & 0x3f)
	for i := 1; i < n; i++ {
		c, err = r.br.ReadByte()
		if err != nil {
			return 0, noEOF(err)
		}
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// ReadFull fills p. Like io.ReadFull it returns io.EOF if the stream ended
// before any byte and io.ErrUnexpectedEOF if it ended part-way. Large reads go
// directly into p without passing through the buffer.
func (r *Reader) ReadFull(p []byte) error {
	_, err := io.ReadFull(r.br, p)
	return err
}

// ReadMessage reads a varint size followed by that many bytes and returns the
// bytes in a new slice. It returns io.EOF only if the stream ended cleanly
// before the size, io.ErrUnexpectedEOF if it ended later, and an error
// wrapping ErrTooLarge if the size exceeds maxSize. maxSize is capped at
// MaxMessageSize; maxSize <= 0 means MaxMessageSize.
func (r *Reader) ReadMessage(maxSize int) ([]byte, error) {
	return r.AppendMessage(nil, maxSize)
}

// AppendMessage is ReadMessage appending the body to dst, so a caller can
// reuse a buffer. On error it returns dst unchanged.
func (r *Reader) AppendMessage(dst []byte, maxSize int) ([]byte, error) {
	size, err := r.ReadVarint()
	if err != nil {
		return dst, err
	}
	if limit := limitOf(maxSize); size > uint64(limit) {
		return dst, fmt.Errorf("%w: message size %d above %d", ErrTooLarge, size, limit)
	}
	return r.AppendN(dst, int(size))
}

// ReadU16Message reads a 16-bit big-endian size followed by that many bytes,
// the framing of the compat CLIENT_SETUP/SERVER_SETUP messages. End of stream
// and maxSize behave as in ReadMessage.
func (r *Reader) ReadU16Message(maxSize int) ([]byte, error) {
	hi, err := r.br.ReadByte()
	if err != nil {
		return nil, err
	}
	lo, err := r.br.ReadByte()
	if err != nil {
		return nil, noEOF(err)
	}
	size := int(hi)<<8 | int(lo)
	if limit := limitOf(maxSize); size > limit {
		return nil, fmt.Errorf("%w: message size %d above %d", ErrTooLarge, size, limit)
	}
	return r.AppendN(nil, size)
}

// AppendN reads exactly n bytes and appends them to dst. Memory grows with the
// data received rather than being reserved for n up front. An early end of
// stream is io.ErrUnexpectedEOF (even before the first byte). On error it
// returns dst unchanged.
func (r *Reader) AppendN(dst []byte, n int) ([]byte, error) {
	if n < 0 {
		return dst, ErrInvalid
	}
	orig := len(dst)
	for n > 0 {
		if cap(dst) == len(dst) {
			dst = slices.Grow(dst, min(n, max(growChunk, len(dst))))
		}
		l := len(dst)
		step := min(n, cap(dst)-l)
		dst = dst[:l+step]
		if _, err := io.ReadFull(r.br, dst[l:]); err != nil {
			return dst[:orig], noEOF(err)
		}
		n -= step
	}
	return dst, nil
}

func limitOf(maxSize int) int {
	if maxSize <= 0 || maxSize > MaxMessageSize {
		return MaxMessageSize
	}
	return maxSize
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF for reads that had already
// started a value.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
