package bench

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	tests := []Header{
		{Publisher: 1, Sequence: 0, Sent: time.Unix(0, 0)},
		{Publisher: 1 << 63, Sequence: 1<<64 - 1, Sent: time.Unix(1700000000, 123456789)},
		{Publisher: 42, Sequence: 7, Sent: time.Now()},
	}
	for _, h := range tests {
		b := AppendHeader([]byte("prefix"), h)
		if len(b) != len("prefix")+HeaderSize {
			t.Fatalf("AppendHeader wrote %d bytes, want %d", len(b)-len("prefix"), HeaderSize)
		}
		frame := append(b[len("prefix"):], "filler"...)
		got, err := ParseHeader(frame)
		if err != nil {
			t.Fatal(err)
		}
		if got.Publisher != h.Publisher || got.Sequence != h.Sequence || !got.Sent.Equal(h.Sent) {
			t.Errorf("ParseHeader(AppendHeader(%+v)) = %+v", h, got)
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	valid := AppendHeader(nil, Header{Publisher: 1, Sequence: 2, Sent: time.Unix(3, 0)})
	tests := map[string][]byte{
		"empty":     nil,
		"short":     valid[:HeaderSize-1],
		"bad magic": append([]byte("MQB2"), valid[4:]...),
		"text":      bytes.Repeat([]byte("x"), 100),
	}
	for name, frame := range tests {
		if _, err := ParseHeader(frame); !errors.Is(err, ErrHeader) {
			t.Errorf("%s: ParseHeader = %v, want ErrHeader", name, err)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(AppendHeader(nil, Header{Publisher: 1, Sequence: 2, Sent: time.Unix(3, 4)}))
	f.Add(append(AppendHeader(nil, Header{Publisher: 9, Sequence: 1 << 40, Sent: time.Unix(1700000000, 0)}), "filler"...))
	f.Add([]byte("MQB1"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, err := ParseHeader(frame)
		if err != nil {
			if !errors.Is(err, ErrHeader) {
				t.Fatalf("error %v is not ErrHeader", err)
			}
			return
		}
		if again := AppendHeader(nil, h); !bytes.Equal(again, frame[:HeaderSize]) {
			t.Fatalf("re-encoding %+v gives %x, want %x", h, again, frame[:HeaderSize])
		}
	})
}
