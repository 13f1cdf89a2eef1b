package lite_test

import (
	"bytes"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/wire"
)

var benchSubscribe = &lite.Subscribe{
	ID:         42,
	Broadcast:  "room/alice",
	Track:      "video/hd",
	Priority:   200,
	Ordered:    true,
	MaxLatency: 1500 * time.Millisecond,
	StartGroup: lite.OptGroup{Seq: 10, Valid: true},
}

func BenchmarkAppendSubscribe(b *testing.B) {
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = lite.AppendMessage(buf[:0], benchSubscribe, lite.Lite04); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSubscribe(b *testing.B) {
	body, err := benchSubscribe.AppendBody(nil, lite.Lite04)
	if err != nil {
		b.Fatal(err)
	}
	var m lite.Subscribe
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := m.DecodeBody(body, lite.Lite04); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendFrameHeader(b *testing.B) {
	buf := make([]byte, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = lite.AppendFrameHeader(buf[:0], 1200); err != nil {
			b.Fatal(err)
		}
	}
}

// loopReader replays data forever.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

var _ io.Reader = (*loopReader)(nil)

func BenchmarkReadFrame(b *testing.B) {
	for _, size := range []int{100, 1200, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			frame, err := lite.AppendFrame(nil, bytes.Repeat([]byte{0x5a}, size))
			if err != nil {
				b.Fatal(err)
			}
			r := wire.NewReader(&loopReader{data: frame})
			buf := make([]byte, 0, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if buf, err = lite.ReadFrame(r, buf[:0], 0); err != nil || len(buf) != size {
					b.Fatalf("ReadFrame = %d bytes, %v", len(buf), err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	return strconv.Itoa(n) + "B"
}
