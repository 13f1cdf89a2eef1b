package lite

import (
	"fmt"
	"math"
	"time"

	"github.com/moqgo/moq/internal/path"
	"github.com/moqgo/moq/internal/wire"
)

// Limits enforced by the decoders (and by the encoders, so that nothing is
// sent that a peer using this package would refuse). The reference
// implementations only bound a whole message (64 MiB); these bounds sit far
// above anything legitimate while keeping a single field from pinning memory.
const (
	// MaxStringLen bounds broadcast paths, prefixes, suffixes, track names
	// and GOAWAY URIs, in bytes.
	MaxStringLen = 64 << 10
	// MaxHops bounds the hop list of an ANNOUNCE (the reference limit).
	MaxHops = 256
	// MaxVersions bounds the version list of CLIENT_SETUP and of the native
	// session client message (the reference JavaScript limit).
	MaxVersions = 128
	// MaxParams bounds the parameters of a SETUP message and the extensions
	// of a native session message (the reference Rust limit).
	MaxParams = 64
	// MaxParamLen bounds one byte-valued parameter or extension value.
	MaxParamLen = 64 << 10
)

// Message is a moq-lite message body codec.
type Message interface {
	// AppendBody appends the body (without its size prefix) as version v
	// writes it. On error it returns b unchanged.
	AppendBody(b []byte, v Version) ([]byte, error)
	// DecodeBody parses a complete body as version v writes it, replacing
	// the receiver's contents. It fails if any byte is left over. After an
	// error the receiver's contents are unspecified.
	DecodeBody(body []byte, v Version) error
}

// AppendMessage appends m as it travels on a stream: the varint body size,
// then the body. On error it returns b unchanged.
func AppendMessage(b []byte, m Message, v Version) ([]byte, error) {
	orig, start := b, len(b)
	// Reserve one byte for the size, which covers bodies under 64 bytes;
	// longer bodies are shifted right once the size is known.
	b, err := m.AppendBody(append(b, 0), v)
	if err != nil {
		return orig, err
	}
	n := len(b) - start - 1
	if n > wire.MaxMessageSize {
		return orig, fmt.Errorf("lite: message body of %d bytes: %w", n, wire.ErrTooLarge)
	}
	if l := wire.VarintLen(uint64(n)); l > 1 {
		b = append(b, make([]byte, l-1)...)
		copy(b[start+l:], b[start+1:start+1+n])
	}
	// Appending to a zero-length slice at start overwrites the reserved
	// bytes in place.
	wire.AppendVarint(b[start:start], uint64(n))
	return b, nil
}

// AppendU16Message appends m with a 16-bit big-endian size prefix, the
// framing of the compat CLIENT_SETUP and SERVER_SETUP. The body must fit in
// 65535 bytes. On error it returns b unchanged.
func AppendU16Message(b []byte, m Message, v Version) ([]byte, error) {
	orig, start := b, len(b)
	b, err := m.AppendBody(append(b, 0, 0), v)
	if err != nil {
		return orig, err
	}
	n := len(b) - start - 2
	if n > math.MaxUint16 {
		return orig, fmt.Errorf("lite: setup body of %d bytes: %w", n, wire.ErrTooLarge)
	}
	wire.AppendU16(b[start:start], uint16(n))
	return b, nil
}

// ReadMessage reads one size-prefixed message from r into m. It returns io.EOF
// if the stream ended cleanly before the message, io.ErrUnexpectedEOF if it
// ended inside it, and an error wrapping wire.ErrTooLarge for a size above
// maxSize (see wire.Reader.ReadMessage).
func ReadMessage(r *wire.Reader, m Message, v Version, maxSize int) error {
	body, err := r.ReadMessage(maxSize)
	if err != nil {
		return err
	}
	return m.DecodeBody(body, v)
}

// OptGroup is an optional group sequence. On the wire it is a varint holding
// Seq+1, with 0 meaning absent.
type OptGroup struct {
	Seq   uint64
	Valid bool
}

// maxDurationMs is the largest millisecond count a time.Duration holds.
const maxDurationMs = math.MaxInt64 / int64(time.Millisecond)

func durationFromMs(ms uint64) time.Duration {
	return time.Duration(min(ms, uint64(maxDurationMs))) * time.Millisecond
}

func versionErr(msg string, v Version) error {
	return fmt.Errorf("%w: %s in %s", ErrVersion, msg, v)
}

// encoder appends fields with a sticky error, so message encoders read as a
// list of fields.
type encoder struct {
	b   []byte
	msg string
	err error
}

func (e *encoder) fail(field string, err error) {
	if e.err == nil {
		e.err = fmt.Errorf("lite: %s: %s: %w", e.msg, field, err)
	}
}

func (e *encoder) varint(v uint64, field string) {
	if e.err != nil {
		return
	}
	if v > wire.MaxVarint {
		e.fail(field, fmt.Errorf("%d above 2^62-1: %w", v, wire.ErrInvalid))
		return
	}
	e.b = wire.AppendVarint(e.b, v)
}

func (e *encoder) u8(v uint8) {
	e.b = append(e.b, v)
}

func (e *encoder) bool(v bool) {
	e.b = wire.AppendBool(e.b, v)
}

func (e *encoder) str(s, field string) {
	if e.err != nil {
		return
	}
	if len(s) > MaxStringLen {
		e.fail(field, fmt.Errorf("%d bytes: %w", len(s), wire.ErrTooLarge))
		return
	}
	e.b = wire.AppendString(e.b, s)
}

func (e *encoder) bytes(p []byte, field string) {
	if e.err != nil {
		return
	}
	if len(p) > MaxParamLen {
		e.fail(field, fmt.Errorf("%d bytes: %w", len(p), wire.ErrTooLarge))
		return
	}
	e.b = wire.AppendBytes(e.b, p)
}

func (e *encoder) duration(d time.Duration, field string) {
	if d < 0 {
		e.fail(field, fmt.Errorf("negative duration %v: %w", d, wire.ErrInvalid))
		return
	}
	e.varint(uint64(d/time.Millisecond), field)
}

func (e *encoder) group(g OptGroup, field string) {
	if !g.Valid {
		e.varint(0, field)
		return
	}
	if g.Seq >= wire.MaxVarint {
		e.fail(field, fmt.Errorf("group %d above 2^62-2: %w", g.Seq, wire.ErrInvalid))
		return
	}
	e.varint(g.Seq+1, field)
}

// count writes a list length after checking it against limit.
func (e *encoder) count(n, limit int, field string) {
	if n > limit {
		e.fail(field, fmt.Errorf("%d entries, limit %d: %w", n, limit, wire.ErrTooLarge))
		return
	}
	e.varint(uint64(n), field)
}

// result returns the appended slice, or orig on error.
func (e *encoder) result(orig []byte) ([]byte, error) {
	if e.err != nil {
		return orig, e.err
	}
	return e.b, nil
}

// decoder reads fields with a sticky error that names the message and field.
type decoder struct {
	d   wire.Decoder
	msg string
	err error
}

func newDecoder(body []byte, msg string) decoder {
	return decoder{d: wire.NewDecoder(body), msg: msg}
}

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("lite: %s: %s: %w", d.msg, field, err)
	}
}

func (d *decoder) varint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, err := d.d.Varint()
	if err != nil {
		d.fail(field, err)
	}
	return v
}

func (d *decoder) u8(field string) uint8 {
	if d.err != nil {
		return 0
	}
	v, err := d.d.U8()
	if err != nil {
		d.fail(field, err)
	}
	return v
}

// bool reads a strict 0/1 byte.
func (d *decoder) bool(field string) bool {
	if d.err != nil {
		return false
	}
	v, err := d.d.Bool()
	if err != nil {
		d.fail(field, err)
	}
	return v
}

// lenientBool reads a byte where any non-zero value is true.
func (d *decoder) lenientBool(field string) bool {
	return d.u8(field) != 0
}

func (d *decoder) str(field string) string {
	if d.err != nil {
		return ""
	}
	s, err := d.d.String(MaxStringLen)
	if err != nil {
		d.fail(field, err)
	}
	return s
}

// path reads a string and normalises it with path.Clean.
func (d *decoder) path(field string) string {
	s := d.str(field)
	if !path.IsClean(s) {
		s = path.Clean(s)
	}
	return s
}

// bytes reads a length-prefixed byte string and copies it; empty values
// decode as nil.
func (d *decoder) bytes(field string) []byte {
	if d.err != nil {
		return nil
	}
	p, err := d.d.VarBytes(MaxParamLen)
	if err != nil {
		d.fail(field, err)
		return nil
	}
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) duration(field string) time.Duration {
	return durationFromMs(d.varint(field))
}

func (d *decoder) group(field string) OptGroup {
	v := d.varint(field)
	if v == 0 {
		return OptGroup{}
	}
	return OptGroup{Seq: v - 1, Valid: true}
}

// count reads a list length, checks it against limit and returns a capacity
// hint no larger than the bytes left (every entry takes at least one byte).
func (d *decoder) count(limit int, field string) (n, capHint int) {
	v := d.varint(field)
	if d.err != nil {
		return 0, 0
	}
	if v > uint64(limit) {
		d.fail(field, fmt.Errorf("%d entries, limit %d: %w", v, limit, wire.ErrTooLarge))
		return 0, 0
	}
	return int(v), min(int(v), d.d.Remaining())
}

// finish checks that the body was consumed exactly and returns the first
// error.
func (d *decoder) finish() error {
	if d.err == nil {
		if err := d.d.Finish(); err != nil {
			d.err = fmt.Errorf("lite: %s: %d bytes left: %w", d.msg, d.d.Remaining(), err)
		}
	}
	return d.err
}
