package wire_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/moqgo/moq/internal/wire"
)

// vectorSeeds returns the bytes of every varint.json vector.
func vectorSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, v := range loadVarintVectors(f).Vectors {
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzParseVarint(f *testing.F) {
	for _, s := range vectorSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := wire.ParseVarint(data)
		if err != nil {
			if !errors.Is(err, wire.ErrShort) {
				t.Fatalf("unexpected error %v", err)
			}
			if len(data) != 0 && len(data) >= 1<<(data[0]>>6) {
				t.Fatalf("ErrShort with %d bytes for a %d-byte varint", len(data), 1<<(data[0]>>6))
			}
			return
		}
		if n != 1<<(data[0]>>6) || v > wire.MaxVarint {
			t.Fatalf("ParseVarint(%x) = %d, %d", data, v, n)
		}
		enc := wire.AppendVarint(nil, v)
		if len(enc) > n || len(enc) != wire.VarintLen(v) {
			t.Fatalf("shortest form of %d is %d bytes, input used %d", v, len(enc), n)
		}
		if len(enc) == n && !bytes.Equal(enc, data[:n]) {
			t.Fatalf("minimal form mismatch: %x vs %x", enc, data[:n])
		}
		if v2, n2, err := wire.ParseVarint(enc); err != nil || v2 != v || n2 != len(enc) {
			t.Fatalf("re-parse of %x = %d, %d, %v", enc, v2, n2, err)
		}
	})
}

func FuzzParseLOVarint(f *testing.F) {
	for _, s := range vectorSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := wire.ParseLOVarint(data)
		if err != nil {
			if !errors.Is(err, wire.ErrShort) && !errors.Is(err, wire.ErrInvalid) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, wire.ErrInvalid) && data[0]&0xfe != 0xfc {
				t.Fatalf("ErrInvalid for first byte %x", data[0])
			}
			return
		}
		if n < 1 || n > 9 || n == 7 || n > len(data) {
			t.Fatalf("ParseLOVarint(%x) length %d", data, n)
		}
		enc := wire.AppendLOVarint(nil, v)
		if len(enc) > n || len(enc) != wire.LOVarintLen(v) {
			t.Fatalf("shortest form of %d is %d bytes, input used %d", v, len(enc), n)
		}
		if v2, n2, err := wire.ParseLOVarint(enc); err != nil || v2 != v || n2 != len(enc) {
			t.Fatalf("re-parse of %x = %d, %d, %v", enc, v2, n2, err)
		}
	})
}

// FuzzDecoder runs a random sequence of Decoder operations over data and
// checks each one against the same operation on a Reader over the same bytes.
func FuzzDecoder(f *testing.F) {
	for _, s := range vectorSeeds(f) {
		f.Add([]byte{0, 4, 5, 1}, s)
	}
	f.Add([]byte{4, 2, 3, 6, 1}, []byte("\x05hello\x01\x02\x03\x40\x40"))
	f.Fuzz(func(t *testing.T, ops, data []byte) {
		d := wire.NewDecoder(data)
		r := wire.NewReader(iotest.OneByteReader(bytes.NewReader(data)))
		for i, op := range ops {
			before := d.Remaining()
			var (
				got, want []byte
				err       error
			)
			arg := int(op >> 3)
			switch op & 7 {
			case 0:
				var v uint64
				if v, err = d.Varint(); err == nil {
					got = wire.AppendVarint(nil, v)
					want2, rerr := r.ReadVarint()
					if rerr != nil || want2 != v {
						t.Fatalf("op %d: Decoder.Varint %d, Reader %d %v", i, v, want2, rerr)
					}
					want = got
				}
			case 1:
				var v uint8
				if v, err = d.U8(); err == nil {
					got = []byte{v}
					c, rerr := r.ReadByte()
					if rerr != nil {
						t.Fatalf("op %d: Reader.ReadByte %v", i, rerr)
					}
					want = []byte{c}
				}
			case 2:
				var v bool
				if v, err = d.Bool(); err == nil {
					got = wire.AppendBool(nil, v)
					c, rerr := r.ReadByte()
					if rerr != nil {
						t.Fatalf("op %d: Reader.ReadByte %v", i, rerr)
					}
					want = []byte{c}
				} else if errors.Is(err, wire.ErrInvalid) && data[len(data)-before] <= 1 {
					t.Fatalf("op %d: Bool rejected %x", i, data[len(data)-before])
				}
			case 3:
				var v uint16
				if v, err = d.U16(); err == nil {
					got = wire.AppendU16(nil, v)
					want = make([]byte, 2)
					if rerr := r.ReadFull(want); rerr != nil {
						t.Fatalf("op %d: Reader.ReadFull %v", i, rerr)
					}
				}
			case 4:
				var s string
				if s, err = d.String(arg); err == nil {
					if len(s) > arg {
						t.Fatalf("op %d: String(%d) returned %d bytes", i, arg, len(s))
					}
					got = []byte(s)
					body, rerr := r.ReadMessage(0)
					if rerr != nil {
						t.Fatalf("op %d: Reader.ReadMessage %v", i, rerr)
					}
					want = body
				}
			case 5:
				if got, err = d.Bytes(arg); err == nil {
					want = make([]byte, arg)
					if rerr := r.ReadFull(want); rerr != nil && arg > 0 {
						t.Fatalf("op %d: Reader.ReadFull %v", i, rerr)
					}
				}
			case 6:
				var v uint64
				if v, err = d.LOVarint(); err == nil {
					got = wire.AppendLOVarint(nil, v)
					// Re-read the raw bytes consumed from the Reader side.
					want = make([]byte, before-d.Remaining())
					if rerr := r.ReadFull(want); rerr != nil {
						t.Fatalf("op %d: Reader.ReadFull %v", i, rerr)
					}
					if v2, _, perr := wire.ParseLOVarint(want); perr != nil || v2 != v {
						t.Fatalf("op %d: LOVarint %d, raw %x", i, v, want)
					}
					want = got
				}
			case 7:
				err = d.Finish()
				if (err == nil) != (d.Remaining() == 0) {
					t.Fatalf("op %d: Finish %v with %d bytes left", i, err, d.Remaining())
				}
				if err != nil && !errors.Is(err, wire.ErrTrailing) {
					t.Fatalf("op %d: Finish err %v", i, err)
				}
				continue
			}
			if err != nil {
				if d.Remaining() != before {
					t.Fatalf("op %d: failed read consumed %d bytes", i, before-d.Remaining())
				}
				if !errors.Is(err, wire.ErrShort) && !errors.Is(err, wire.ErrInvalid) && !errors.Is(err, wire.ErrTooLarge) {
					t.Fatalf("op %d: unexpected error %v", i, err)
				}
				return
			}
			if d.Remaining() > before {
				t.Fatalf("op %d: Remaining grew", i)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("op %d (%d): Decoder %x, Reader %x", i, op&7, got, want)
			}
		}
	})
}

// FuzzReader reads messages from data delivered in random chunk sizes and
// compares them with a Decoder parse of the same bytes.
func FuzzReader(f *testing.F) {
	for _, s := range vectorSeeds(f) {
		f.Add(s, uint16(0), uint8(0))
	}
	f.Add([]byte("\x03abc\x00\x40\x02hi"), uint16(3), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, maxSize uint16, mode uint8) {
		var src io.Reader = bytes.NewReader(data)
		switch mode % 3 {
		case 1:
			src = iotest.OneByteReader(src)
		case 2:
			src = iotest.HalfReader(src)
		}
		r := wire.NewReader(src)
		d := wire.NewDecoder(data)
		limit := int(maxSize)
		if limit == 0 {
			limit = wire.MaxMessageSize
		}
		for {
			body, err := r.ReadMessage(int(maxSize))
			size, derr := d.Varint()
			switch {
			case err == io.EOF:
				if derr == nil || d.Remaining() != 0 {
					t.Fatalf("Reader io.EOF but Decoder has %d bytes left", d.Remaining())
				}
				return
			case errors.Is(err, wire.ErrTooLarge):
				if derr != nil || size <= uint64(limit) {
					t.Fatalf("ErrTooLarge for size %d (limit %d, %v)", size, limit, derr)
				}
				return
			case err == io.ErrUnexpectedEOF:
				if derr == nil {
					if size > uint64(limit) {
						t.Fatalf("size %d over limit %d not reported as ErrTooLarge", size, limit)
					}
					if _, berr := d.Bytes(int(size)); !errors.Is(berr, wire.ErrShort) {
						t.Fatalf("Reader truncated but Decoder read %d bytes", size)
					}
				} else if !errors.Is(derr, wire.ErrShort) {
					t.Fatalf("Decoder error %v", derr)
				}
				return
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			}
			if derr != nil {
				t.Fatalf("Reader read a message, Decoder failed: %v", derr)
			}
			want, berr := d.Bytes(int(size))
			if berr != nil || !bytes.Equal(body, want) {
				t.Fatalf("Reader body %x, Decoder %x (%v)", body, want, berr)
			}
		}
	})
}
