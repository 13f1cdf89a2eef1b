package moq

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"testing"
	"testing/synctest"
)

// newTestFrame returns a frame of the given size inside a fresh group.
func newTestFrame(t *testing.T, size uint64) *FrameProducer {
	t.Helper()
	track := NewTrack(Track{Name: "frames"})
	t.Cleanup(track.Close)
	g, err := track.AppendGroup()
	noErr(t, "AppendGroup", err)
	t.Cleanup(g.Close)
	f, err := g.CreateFrame(FrameInfo{Size: size})
	noErr(t, "CreateFrame", err)
	t.Cleanup(f.Close)
	return f
}

func TestFrameSingleChunkRoundtrip(t *testing.T) {
	f := newTestFrame(t, 5)
	if f.Size() != 5 || f.Consume().Size() != 5 {
		t.Fatalf("Size = %d", f.Size())
	}
	noErr(t, "Write", f.Write([]byte("hello")))
	noErr(t, "Finish", f.Finish())

	data, err := f.Consume().ReadAll(doneCtx)
	noErr(t, "ReadAll", err)
	if string(data) != "hello" {
		t.Fatalf("ReadAll = %q", data)
	}
}

func TestFrameMultiChunkReadAll(t *testing.T) {
	f := newTestFrame(t, 10)
	noErr(t, "Write", f.Write([]byte("hello")))
	noErr(t, "Write", f.Write([]byte("world")))
	noErr(t, "Finish", f.Finish())

	data, err := f.Consume().ReadAll(doneCtx)
	noErr(t, "ReadAll", err)
	if string(data) != "helloworld" {
		t.Fatalf("ReadAll = %q", data)
	}
}

func TestFrameReadChunkSequential(t *testing.T) {
	f := newTestFrame(t, 10)
	noErr(t, "Write", f.Write([]byte("hello")))
	noErr(t, "Write", f.Write([]byte("world")))
	noErr(t, "Finish", f.Finish())

	c := f.Consume()
	for _, want := range []string{"hello", "world"} {
		chunk, err := c.ReadChunk(doneCtx)
		noErr(t, "ReadChunk", err)
		if string(chunk) != want {
			t.Fatalf("ReadChunk = %q, want %q", chunk, want)
		}
	}
	_, err := c.ReadChunk(doneCtx)
	isErr(t, "ReadChunk at end", err, io.EOF)
}

// The Rust read_all_chunks test reads every remaining chunk at once; here a
// consumer that read the first chunk gets the rest with ReadAll.
func TestFrameReadAllAfterChunk(t *testing.T) {
	f := newTestFrame(t, 10)
	noErr(t, "Write", f.Write([]byte("hello")))
	noErr(t, "Write", f.Write([]byte("world")))
	noErr(t, "Finish", f.Finish())

	c := f.Consume()
	first, err := c.ReadChunk(doneCtx)
	noErr(t, "ReadChunk", err)
	rest, err := c.ReadAll(doneCtx)
	noErr(t, "ReadAll", err)
	if string(first) != "hello" || string(rest) != "world" {
		t.Fatalf("got %q then %q", first, rest)
	}
	_, err = c.ReadChunk(doneCtx)
	isErr(t, "ReadChunk after ReadAll", err, io.EOF)
}

func TestFrameFinishChecksRemaining(t *testing.T) {
	f := newTestFrame(t, 5)
	noErr(t, "Write", f.Write([]byte("hi")))
	isErr(t, "Finish", f.Finish(), ErrWrongSize)
}

func TestFrameWriteTooManyBytes(t *testing.T) {
	f := newTestFrame(t, 3)
	isErr(t, "Write", f.Write([]byte("toolong")), ErrWrongSize)
	// The failed write left nothing behind.
	noErr(t, "Write", f.Write([]byte("abc")))
	noErr(t, "Finish", f.Finish())
}

func TestFrameAbortPropagates(t *testing.T) {
	f := newTestFrame(t, 5)
	c := f.Consume()
	noErr(t, "Abort", f.Abort(ErrCancel))

	_, err := c.ReadAll(doneCtx)
	isErr(t, "ReadAll", err, ErrCancel)
	_, err = c.ReadChunk(doneCtx)
	isErr(t, "ReadChunk", err, ErrCancel)
	isErr(t, "Write after abort", f.Write([]byte("x")), ErrCancel)
}

func TestFrameEmpty(t *testing.T) {
	f := newTestFrame(t, 0)
	noErr(t, "Finish", f.Finish())
	data, err := f.Consume().ReadAll(doneCtx)
	noErr(t, "ReadAll", err)
	if data == nil || len(data) != 0 {
		t.Fatalf("ReadAll = %#v, want empty non-nil", data)
	}
}

func TestFramePendingThenReady(t *testing.T) {
	f := newTestFrame(t, 5)
	c := f.Consume()
	if _, err := c.ReadAll(doneCtx); !wouldBlock(err) {
		t.Fatalf("ReadAll should block, got %v", err)
	}
	if _, err := c.ReadChunk(doneCtx); !wouldBlock(err) {
		t.Fatalf("ReadChunk should block, got %v", err)
	}
	noErr(t, "Write", f.Write([]byte("hello")))
	noErr(t, "Finish", f.Finish())
	data, err := c.ReadAll(doneCtx)
	noErr(t, "ReadAll", err)
	if string(data) != "hello" {
		t.Fatalf("ReadAll = %q", data)
	}
}

func TestFrameWaitersWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newTestFrame(t, 10)
		const readers = 8
		var wg sync.WaitGroup
		got := make([][]byte, readers)
		errs := make([]error, readers)
		for i := range readers {
			c := f.Consume()
			wg.Go(func() { got[i], errs[i] = c.ReadAll(context.Background()) })
		}
		synctest.Wait() // every reader is durably blocked
		noErr(t, "Write", f.Write([]byte("hello")))
		synctest.Wait() // half a frame wakes them, but they keep waiting
		noErr(t, "Write", f.Write([]byte("world")))
		wg.Wait()
		for i := range readers {
			noErr(t, "ReadAll", errs[i])
			if string(got[i]) != "helloworld" {
				t.Fatalf("reader %d got %q", i, got[i])
			}
			// A multi-chunk frame is concatenated once and shared.
			if &got[i][0] != &got[0][0] {
				t.Fatalf("reader %d got a different copy", i)
			}
		}
	})
}

func TestFrameDropped(t *testing.T) {
	tests := []struct {
		name    string
		write   []string
		wantErr error // nil: the frame stays readable
	}{
		{"nothing written", nil, ErrDropped},
		{"partly written", []string{"he"}, ErrDropped},
		{"complete", []string{"hello"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFrame(t, 5)
			c := f.Consume()
			for _, w := range tt.write {
				noErr(t, "Write", f.Write([]byte(w)))
			}
			f.Close()
			f.Close() // idempotent
			data, err := c.ReadAll(doneCtx)
			if tt.wantErr != nil {
				isErr(t, "ReadAll", err, tt.wantErr)
				return
			}
			noErr(t, "ReadAll", err)
			if string(data) != "hello" {
				t.Fatalf("ReadAll = %q", data)
			}
		})
	}
}

func TestFrameClosedHandle(t *testing.T) {
	f := newTestFrame(t, 5)
	f.Close()
	isErr(t, "Write", f.Write([]byte("x")), ErrClosed)
	isErr(t, "Finish", f.Finish(), ErrClosed)
	isErr(t, "Abort", f.Abort(nil), ErrClosed)
}

func TestFrameAbortAfterCompleteKeepsData(t *testing.T) {
	f := newTestFrame(t, 5)
	noErr(t, "Write", f.Write([]byte("hello")))
	noErr(t, "Abort", f.Abort(ErrTimeout))
	data, err := f.Consume().ReadAll(doneCtx)
	noErr(t, "ReadAll", err)
	if string(data) != "hello" {
		t.Fatalf("ReadAll = %q", data)
	}
}

func TestFrameChunksShared(t *testing.T) {
	f := newTestFrame(t, 4)
	chunk := []byte("abcd")
	noErr(t, "Write", f.Write(chunk))
	for i := range 3 {
		c := f.Consume()
		got, err := c.ReadChunk(doneCtx)
		noErr(t, "ReadChunk", err)
		if &got[0] != &chunk[0] {
			t.Fatalf("consumer %d got a copy", i)
		}
		all, err := f.Consume().ReadAll(doneCtx)
		noErr(t, "ReadAll", err)
		if &all[0] != &chunk[0] || !bytes.Equal(all, chunk) {
			t.Fatalf("consumer %d ReadAll got a copy", i)
		}
	}
}

func TestFrameAbortNilIsCancel(t *testing.T) {
	f := newTestFrame(t, 1)
	noErr(t, "Abort", f.Abort(nil))
	_, err := f.Consume().ReadAll(doneCtx)
	if !errors.Is(err, ErrCancel) {
		t.Fatalf("ReadAll = %v, want ErrCancel", err)
	}
}

func TestFrameConcurrentChunkReaders(t *testing.T) {
	const chunks, readers = 200, 8
	f := newTestFrame(t, chunks)
	var wg sync.WaitGroup
	got := make([][]byte, readers)
	errs := make([]error, readers)
	for i := range readers {
		c := f.Consume()
		wg.Go(func() {
			for {
				chunk, err := c.ReadChunk(context.Background())
				if err == io.EOF {
					return
				}
				if err != nil {
					errs[i] = err
					return
				}
				got[i] = append(got[i], chunk...)
			}
		})
	}
	want := make([]byte, chunks)
	for i := range want {
		want[i] = byte(i)
		noErr(t, "Write", f.Write(want[i:i+1]))
	}
	noErr(t, "Finish", f.Finish())
	wg.Wait()
	for i := range readers {
		noErr(t, "reader", errs[i])
		if !bytes.Equal(got[i], want) {
			t.Fatalf("reader %d got %v", i, got[i])
		}
	}
}

func TestFrameTimestamps(t *testing.T) {
	tests := []struct {
		name    string
		write   func(t *testing.T, g *GroupProducer)
		payload string
		want    FrameInfo
	}{
		{"WriteFrame has none", func(t *testing.T, g *GroupProducer) {
			noErr(t, "WriteFrame", g.WriteFrame([]byte("abc")))
		}, "abc", FrameInfo{Size: 3}},
		{"WriteFrameAt", func(t *testing.T, g *GroupProducer) {
			noErr(t, "WriteFrameAt", g.WriteFrameAt([]byte("abcd"), 90000))
		}, "abcd", FrameInfo{Size: 4, Timestamp: 90000, HasTimestamp: true}},
		{"WriteFrameAt zero is a timestamp", func(t *testing.T, g *GroupProducer) {
			noErr(t, "WriteFrameAt", g.WriteFrameAt([]byte("a"), 0))
		}, "a", FrameInfo{Size: 1, HasTimestamp: true}},
		{"WriteFrameAt largest", func(t *testing.T, g *GroupProducer) {
			noErr(t, "WriteFrameAt", g.WriteFrameAt(nil, math.MaxUint64))
		}, "", FrameInfo{Timestamp: math.MaxUint64, HasTimestamp: true}},
		{"CreateFrame with a timestamp", func(t *testing.T, g *GroupProducer) {
			info := FrameInfo{Size: 5, Timestamp: 33, HasTimestamp: true}
			f, err := g.CreateFrame(info)
			noErr(t, "CreateFrame", err)
			defer f.Close()
			if f.Info() != info || f.Size() != 5 {
				t.Fatalf("FrameProducer.Info = %+v, Size %d; want %+v", f.Info(), f.Size(), info)
			}
			noErr(t, "Write", f.Write([]byte("he")))
			noErr(t, "Write", f.Write([]byte("llo")))
			noErr(t, "Finish", f.Finish())
		}, "hello", FrameInfo{Size: 5, Timestamp: 33, HasTimestamp: true}},
		{"CreateFrame without", func(t *testing.T, g *GroupProducer) {
			f, err := g.CreateFrame(FrameInfo{Size: 2})
			noErr(t, "CreateFrame", err)
			defer f.Close()
			noErr(t, "Write", f.Write([]byte("hi")))
		}, "hi", FrameInfo{Size: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGroup(t)
			tt.write(t, g)
			noErr(t, "WriteFrame", g.WriteFrameAt([]byte("next"), 1)) // does not leak into the frame before
			noErr(t, "Finish", g.Finish())

			f := nextFrameNow(t, g.Consume())
			if f.Info() != tt.want || f.Size() != tt.want.Size {
				t.Fatalf("NextFrame().Info() = %+v, Size %d; want %+v", f.Info(), f.Size(), tt.want)
			}
			data, err := f.ReadAll(doneCtx)
			noErr(t, "ReadAll", err)
			if string(data) != tt.payload {
				t.Fatalf("ReadAll = %q, want %q", data, tt.payload)
			}
			byIndex, err := g.Consume().GetFrame(doneCtx, 0)
			noErr(t, "GetFrame", err)
			if byIndex.Info() != tt.want {
				t.Fatalf("GetFrame(0).Info() = %+v, want %+v", byIndex.Info(), tt.want)
			}
			next, err := g.Consume().GetFrame(doneCtx, 1)
			noErr(t, "GetFrame", err)
			if want := (FrameInfo{Size: 4, Timestamp: 1, HasTimestamp: true}); next.Info() != want {
				t.Fatalf("GetFrame(1).Info() = %+v, want %+v", next.Info(), want)
			}
		})
	}
}

// The timestamp reaches a track's subscribers along with the payload.
func TestFrameTimestampThroughTrack(t *testing.T) {
	p := NewTrack(Track{Name: "video", Timescale: 90000})
	t.Cleanup(p.Close)
	c := consume(t, p)
	g, err := p.AppendGroup()
	noErr(t, "AppendGroup", err)
	t.Cleanup(g.Close)
	for i, ts := range []uint64{0, 3000, 6000} {
		noErr(t, "WriteFrameAt", g.WriteFrameAt([]byte{byte(i)}, ts))
	}
	noErr(t, "Finish", g.Finish())
	noErr(t, "WriteFrame", p.WriteFrame([]byte("untimed")))

	gc := nextGroupNow(t, c)
	for i, ts := range []uint64{0, 3000, 6000} {
		if info := nextFrameNow(t, gc).Info(); info != (FrameInfo{Size: 1, Timestamp: ts, HasTimestamp: true}) {
			t.Fatalf("frame %d: Info = %+v, want timestamp %d", i, info, ts)
		}
	}
	if info := nextFrameNow(t, nextGroupNow(t, c)).Info(); info.HasTimestamp || info.Size != 7 {
		t.Fatalf("TrackProducer.WriteFrame frame: Info = %+v", info)
	}
	if c.Info().Timescale != 90000 {
		t.Fatalf("Timescale = %d", c.Info().Timescale)
	}
}
