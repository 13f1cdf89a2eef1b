package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/moqgo/moq/internal/wire"
)

func TestVarintBoundaries(t *testing.T) {
	tests := []struct {
		v uint64
		n int
	}{
		{0, 1}, {63, 1}, {64, 2}, {1<<14 - 1, 2}, {1 << 14, 4},
		{1<<30 - 1, 4}, {1 << 30, 8}, {wire.MaxVarint, 8},
	}
	for _, tt := range tests {
		b := wire.AppendVarint([]byte{0xaa}, tt.v)
		if len(b) != 1+tt.n || b[0] != 0xaa {
			t.Errorf("AppendVarint(%d) = %x, want prefix aa and %d bytes", tt.v, b, tt.n)
			continue
		}
		if got := wire.VarintLen(tt.v); got != tt.n {
			t.Errorf("VarintLen(%d) = %d, want %d", tt.v, got, tt.n)
		}
		got, n, err := wire.ParseVarint(b[1:])
		if err != nil || got != tt.v || n != tt.n {
			t.Errorf("ParseVarint(%x) = %d, %d, %v", b[1:], got, n, err)
		}
		for cut := 0; cut < tt.n; cut++ {
			if _, _, err := wire.ParseVarint(b[1 : 1+cut]); !errors.Is(err, wire.ErrShort) {
				t.Errorf("ParseVarint(%x) err = %v, want ErrShort", b[1:1+cut], err)
			}
		}
	}
}

func TestLOVarintBoundaries(t *testing.T) {
	tests := []struct {
		v uint64
		n int
	}{
		{0, 1}, {127, 1}, {128, 2}, {1<<14 - 1, 2}, {1 << 14, 3}, {1<<21 - 1, 3},
		{1 << 21, 4}, {1<<28 - 1, 4}, {1 << 28, 5}, {1<<35 - 1, 5}, {1 << 35, 6},
		{1<<42 - 1, 6}, {1 << 42, 8}, {1<<56 - 1, 8}, {1 << 56, 9}, {1<<64 - 1, 9},
	}
	for _, tt := range tests {
		b := wire.AppendLOVarint(nil, tt.v)
		if len(b) != tt.n || wire.LOVarintLen(tt.v) != tt.n {
			t.Errorf("AppendLOVarint(%d) = %x (LOVarintLen %d), want %d bytes", tt.v, b, wire.LOVarintLen(tt.v), tt.n)
			continue
		}
		got, n, err := wire.ParseLOVarint(b)
		if err != nil || got != tt.v || n != tt.n {
			t.Errorf("ParseLOVarint(%x) = %d, %d, %v", b, got, n, err)
		}
		for cut := 0; cut < tt.n; cut++ {
			if _, _, err := wire.ParseLOVarint(b[:cut]); !errors.Is(err, wire.ErrShort) {
				t.Errorf("ParseLOVarint(%x) err = %v, want ErrShort", b[:cut], err)
			}
		}
	}
	// Non-minimal forms decode.
	for _, in := range [][]byte{{0x80, 0x05}, {0xc0, 0x00, 0x05}, {0xfe, 0, 0, 0, 0, 0, 0, 5}, {0xff, 0, 0, 0, 0, 0, 0, 0, 5}} {
		if v, n, err := wire.ParseLOVarint(in); err != nil || v != 5 || n != len(in) {
			t.Errorf("ParseLOVarint(%x) = %d, %d, %v; want 5", in, v, n, err)
		}
	}
}

func TestDecoder(t *testing.T) {
	body := wire.AppendVarint(nil, 300)
	body = append(body, 7, 1)
	body = wire.AppendU16(body, 0xbeef)
	body = wire.AppendString(body, "héllo")
	body = wire.AppendBytes(body, []byte{9, 9})
	body = append(body, 0xde, 0xad)

	d := wire.NewDecoder(body)
	if v, err := d.Varint(); err != nil || v != 300 {
		t.Fatalf("Varint = %d, %v", v, err)
	}
	if v, err := d.U8(); err != nil || v != 7 {
		t.Fatalf("U8 = %d, %v", v, err)
	}
	if v, err := d.Bool(); err != nil || !v {
		t.Fatalf("Bool = %v, %v", v, err)
	}
	if v, err := d.U16(); err != nil || v != 0xbeef {
		t.Fatalf("U16 = %x, %v", v, err)
	}
	if _, err := d.String(5); !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("String(5) of 6 bytes err = %v, want ErrTooLarge", err)
	}
	if v, err := d.String(6); err != nil || v != "héllo" {
		t.Fatalf("String = %q, %v", v, err)
	}
	if v, err := d.VarBytes(2); err != nil || !bytes.Equal(v, []byte{9, 9}) {
		t.Fatalf("VarBytes = %x, %v", v, err)
	}
	if err := d.Finish(); !errors.Is(err, wire.ErrTrailing) {
		t.Fatalf("Finish with 2 bytes left = %v, want ErrTrailing", err)
	}
	if d.Remaining() != 2 {
		t.Fatalf("Remaining = %d, want 2", d.Remaining())
	}
	if _, err := d.Bytes(3); !errors.Is(err, wire.ErrShort) {
		t.Fatalf("Bytes(3) err = %v, want ErrShort", err)
	}
	if _, err := d.Bytes(-1); !errors.Is(err, wire.ErrInvalid) {
		t.Fatalf("Bytes(-1) err = %v, want ErrInvalid", err)
	}
	p, err := d.Bytes(2)
	if err != nil || !bytes.Equal(p, []byte{0xde, 0xad}) {
		t.Fatalf("Bytes(2) = %x, %v", p, err)
	}
	if cap(p) != 2 {
		t.Errorf("Bytes result has spare capacity %d: appending to it would clobber the body", cap(p))
	}
	if err := d.Finish(); err != nil {
		t.Fatalf("Finish = %v", err)
	}
}

// TestDecoderErrors checks that a failing read reports the right sentinel and
// leaves the position unchanged.
func TestDecoderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		op   func(*wire.Decoder) error
		want error
	}{
		{"varint empty", nil, func(d *wire.Decoder) error { _, err := d.Varint(); return err }, wire.ErrShort},
		{"varint cut", []byte{0x80, 1}, func(d *wire.Decoder) error { _, err := d.Varint(); return err }, wire.ErrShort},
		{"lovarint reserved", []byte{0xfc, 0, 0, 0, 0, 0, 0}, func(d *wire.Decoder) error { _, err := d.LOVarint(); return err }, wire.ErrInvalid},
		{"u8 empty", nil, func(d *wire.Decoder) error { _, err := d.U8(); return err }, wire.ErrShort},
		{"u16 cut", []byte{1}, func(d *wire.Decoder) error { _, err := d.U16(); return err }, wire.ErrShort},
		{"bool 2", []byte{2}, func(d *wire.Decoder) error { _, err := d.Bool(); return err }, wire.ErrInvalid},
		{"bool ff", []byte{0xff}, func(d *wire.Decoder) error { _, err := d.Bool(); return err }, wire.ErrInvalid},
		{"string cut", []byte{3, 'a', 'b'}, func(d *wire.Decoder) error { _, err := d.String(10); return err }, wire.ErrShort},
		{"string bad utf8", []byte{2, 0xc3, 0x28}, func(d *wire.Decoder) error { _, err := d.String(10); return err }, wire.ErrInvalid},
		{"string too long", []byte{3, 'a', 'b', 'c'}, func(d *wire.Decoder) error { _, err := d.String(2); return err }, wire.ErrTooLarge},
		{"string negative limit", []byte{1, 'a'}, func(d *wire.Decoder) error { _, err := d.String(-1); return err }, wire.ErrTooLarge},
		{"varbytes huge length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, func(d *wire.Decoder) error { _, err := d.VarBytes(1 << 30); return err }, wire.ErrTooLarge},
		{"varbytes cut", []byte{0x40, 0x10, 1}, func(d *wire.Decoder) error { _, err := d.VarBytes(100); return err }, wire.ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := wire.NewDecoder(tt.in)
			if err := tt.op(&d); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if d.Remaining() != len(tt.in) {
				t.Errorf("failed read consumed input: Remaining %d of %d", d.Remaining(), len(tt.in))
			}
		})
	}
}

func TestIsDecodeError(t *testing.T) {
	for _, err := range []error{wire.ErrShort, wire.ErrTrailing, wire.ErrInvalid, wire.ErrTooLarge, fmt.Errorf("ctx: %w", wire.ErrShort)} {
		if !wire.IsDecodeError(err) {
			t.Errorf("IsDecodeError(%v) = false", err)
		}
	}
	for _, err := range []error{nil, io.EOF, io.ErrUnexpectedEOF, errors.New("other")} {
		if wire.IsDecodeError(err) {
			t.Errorf("IsDecodeError(%v) = true", err)
		}
	}
}

func TestZeroDecoder(t *testing.T) {
	var d wire.Decoder
	if err := d.Finish(); err != nil {
		t.Fatalf("zero Decoder Finish = %v", err)
	}
	if _, err := d.Varint(); !errors.Is(err, wire.ErrShort) {
		t.Fatalf("zero Decoder Varint err = %v", err)
	}
}

func TestAppendReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		b := wire.AppendVarint(buf[:0], wire.MaxVarint)
		b = wire.AppendString(b, "room/alice")
		b = wire.AppendLOVarint(b, 1<<60)
		_ = wire.AppendU16(b, 7)
	})
	if allocs != 0 {
		t.Errorf("append into a large enough buffer allocated %v times", allocs)
	}
	s := strings.Repeat("x", 100)
	if got := wire.AppendString(nil, s); len(got) != 2+100 {
		t.Errorf("AppendString of 100 bytes has length %d", len(got))
	}
}
