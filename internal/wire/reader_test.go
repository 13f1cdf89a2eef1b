package wire_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/moqgo/moq/internal/wire"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReaderReadVarint(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []uint64
		wantErr error
	}{
		{"empty stream", "", nil, io.EOF},
		{"one", "25", []uint64{37}, io.EOF},
		{"non-minimal forms", "254025800000" + "25c000000000000025", []uint64{37, 37, 37, 37}, io.EOF},
		{"max", "ffffffffffffffff", []uint64{wire.MaxVarint}, io.EOF},
		{"cut 2-byte", "2540", []uint64{37}, io.ErrUnexpectedEOF},
		{"cut 8-byte", "c0000000", nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte per Read exercises refills inside a varint.
			r := wire.NewReader(iotest.OneByteReader(bytes.NewReader(unhex(t, tt.in))))
			var got []uint64
			for {
				v, err := r.ReadVarint()
				if err != nil {
					if err != tt.wantErr {
						t.Fatalf("err = %v, want %v", err, tt.wantErr)
					}
					break
				}
				got = append(got, v)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestReaderReadMessage(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    []string // hex bodies
		wantErr error
	}{
		{"clean end", "", 100, nil, io.EOF},
		{"two messages", "03616263" + "00", 100, []string{"616263", ""}, io.EOF},
		{"non-minimal size", "4003616263", 100, []string{"616263"}, io.EOF},
		{"cut body", "0561", 100, nil, io.ErrUnexpectedEOF},
		{"cut before body", "05", 100, nil, io.ErrUnexpectedEOF},
		{"cut size", "40", 100, nil, io.ErrUnexpectedEOF},
		{"over max", "0461626364", 3, nil, wire.ErrTooLarge},
		{"at max", "03616263", 3, []string{"616263"}, io.EOF},
		{"max zero means default", "03616263", 0, []string{"616263"}, io.EOF},
		{"over MaxMessageSize", "c000000004000001", 0, nil, wire.ErrTooLarge},
		{"over MaxMessageSize despite larger max", "c000000004000001", 1 << 30, nil, wire.ErrTooLarge},
		{"huge size", "ffffffffffffffff", -1, nil, wire.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := wire.NewReader(iotest.HalfReader(bytes.NewReader(unhex(t, tt.in))))
			var got []string
			for {
				body, err := r.ReadMessage(tt.max)
				if err != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("err = %v, want %v", err, tt.wantErr)
					}
					break
				}
				got = append(got, hex.EncodeToString(body))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestReaderReadU16Message(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    string
		wantErr error
	}{
		{"clean end", "", 100, "", io.EOF},
		{"cut size", "00", 100, "", io.ErrUnexpectedEOF},
		{"cut body", "000561", 100, "", io.ErrUnexpectedEOF},
		{"ok", "0003616263", 100, "616263", nil},
		{"empty", "0000", 100, "", nil},
		{"over max", "0004616263", 3, "", wire.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := wire.NewReader(bytes.NewReader(unhex(t, tt.in)))
			body, err := r.ReadU16Message(tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := hex.EncodeToString(body); got != tt.want {
				t.Fatalf("body = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestReaderAppendMessage(t *testing.T) {
	r := wire.NewReader(bytes.NewReader(unhex(t, "026869"+"0561")))
	dst := []byte("pre:")
	dst, err := r.AppendMessage(dst, 0)
	if err != nil || string(dst) != "pre:hi" {
		t.Fatalf("AppendMessage = %q, %v", dst, err)
	}
	got, err := r.AppendMessage(dst, 0)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut message err = %v", err)
	}
	if string(got) != "pre:hi" {
		t.Fatalf("failed AppendMessage changed dst to %q", got)
	}
	if _, err := r.AppendN(nil, -1); !errors.Is(err, wire.ErrInvalid) {
		t.Fatalf("AppendN(-1) err = %v", err)
	}
}

// spyReader records the largest slice it was asked to fill.
type spyReader struct {
	r       io.Reader
	largest int
}

func (s *spyReader) Read(p []byte) (int, error) {
	s.largest = max(s.largest, len(p))
	return s.r.Read(p)
}

func TestReaderLargeReads(t *testing.T) {
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	stream := wire.AppendVarint(nil, uint64(len(payload)))
	stream = append(stream, payload...)
	stream = append(stream, payload...)
	stream = append(stream, 0x2a)

	spy := &spyReader{r: bytes.NewReader(stream)}
	r := wire.NewReader(spy)
	body, err := r.ReadMessage(0)
	if err != nil || !bytes.Equal(body, payload) {
		t.Fatalf("ReadMessage of 1 MiB: len %d, err %v", len(body), err)
	}
	p := make([]byte, len(payload))
	spy.largest = 0
	if err := r.ReadFull(p); err != nil || !bytes.Equal(p, payload) {
		t.Fatalf("ReadFull of 1 MiB: %v", err)
	}
	if spy.largest < len(payload)/2 {
		t.Errorf("ReadFull went through the buffer: largest underlying read %d bytes", spy.largest)
	}
	if c, err := r.ReadByte(); err != nil || c != 0x2a {
		t.Fatalf("ReadByte = %x, %v", c, err)
	}
	if err := r.ReadFull(p[:1]); err != io.EOF {
		t.Fatalf("ReadFull at end err = %v, want io.EOF", err)
	}
}

// TestReaderBoundedAllocation checks that a message claiming a huge size but
// ending early does not commit memory for the claimed size.
func TestReaderBoundedAllocation(t *testing.T) {
	stream := wire.AppendVarint(nil, wire.MaxMessageSize)
	stream = append(stream, make([]byte, 10)...)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := wire.NewReader(bytes.NewReader(stream)).ReadMessage(0)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("allocated %d bytes for a 10-byte truncated message", grew)
	}
}

func TestReaderPropagatesErrors(t *testing.T) {
	boom := errors.New("boom")
	r := wire.NewReader(iotest.ErrReader(boom))
	if _, err := r.ReadVarint(); !errors.Is(err, boom) {
		t.Fatalf("ReadVarint err = %v, want boom", err)
	}
	if _, err := r.ReadMessage(0); !errors.Is(err, boom) {
		t.Fatalf("ReadMessage err = %v, want boom", err)
	}
	// An error inside a value is reported as is, not as an EOF.
	r = wire.NewReader(io.MultiReader(bytes.NewReader([]byte{0x05, 1}), iotest.ErrReader(boom)))
	if _, err := r.ReadMessage(0); !errors.Is(err, boom) {
		t.Fatalf("ReadMessage mid-body err = %v, want boom", err)
	}
}

func TestReaderBuffered(t *testing.T) {
	r := wire.NewReader(bytes.NewReader([]byte{1, 2, 3}))
	if r.Buffered() != 0 {
		t.Fatalf("Buffered before any read = %d", r.Buffered())
	}
	if _, err := r.ReadByte(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 2 {
		t.Fatalf("Buffered = %d, want 2", r.Buffered())
	}
}
