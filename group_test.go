package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// newTestGroup returns group 0 of a fresh track.
func newTestGroup(t *testing.T) *GroupProducer {
	t.Helper()
	track := NewTrack(Track{Name: "groups"})
	t.Cleanup(track.Close)
	g, err := track.AppendGroup()
	noErr(t, "AppendGroup", err)
	t.Cleanup(g.Close)
	return g
}

// nextFrameNow returns the next frame, failing if it would block, errors or
// the group ended.
func nextFrameNow(t *testing.T, c *GroupConsumer) *FrameConsumer {
	t.Helper()
	f, err := c.NextFrame(doneCtx)
	noErr(t, "NextFrame", err)
	return f
}

// groupEndsNow fails unless NextFrame reports the end of the group: io.EOF
// itself, not wrapped, and no frame.
func groupEndsNow(t *testing.T, c *GroupConsumer) {
	t.Helper()
	f, err := c.NextFrame(doneCtx)
	if f != nil || err != io.EOF {
		t.Fatalf("NextFrame = %v, %v; want the end of the group (io.EOF)", f, err)
	}
}

func TestGroupBasicFrameReading(t *testing.T) {
	g := newTestGroup(t)
	noErr(t, "WriteFrame", g.WriteFrame([]byte("frame0")))
	noErr(t, "WriteFrame", g.WriteFrame([]byte("frame1")))
	noErr(t, "Finish", g.Finish())

	c := g.Consume()
	for range 2 {
		if f := nextFrameNow(t, c); f.Size() != 6 {
			t.Fatalf("Size = %d", f.Size())
		}
	}
	groupEndsNow(t, c)
}

func TestGroupReadFrameAllAtOnce(t *testing.T) {
	g := newTestGroup(t)
	noErr(t, "WriteFrame", g.WriteFrame([]byte("hello")))
	noErr(t, "Finish", g.Finish())

	c := g.Consume()
	data, err := c.ReadFrame(doneCtx)
	noErr(t, "ReadFrame", err)
	if string(data) != "hello" {
		t.Fatalf("ReadFrame = %q", data)
	}
	_, err = c.ReadFrame(doneCtx)
	isErr(t, "ReadFrame at end", err, io.EOF)
}

func TestGroupReadFrameChunks(t *testing.T) {
	g := newTestGroup(t)
	f, err := g.CreateFrame(FrameInfo{Size: 10})
	noErr(t, "CreateFrame", err)
	defer f.Close()
	noErr(t, "Write", f.Write([]byte("hello")))
	noErr(t, "Write", f.Write([]byte("world")))
	noErr(t, "Finish", f.Finish())
	noErr(t, "Finish", g.Finish())

	fc := nextFrameNow(t, g.Consume())
	var chunks []string
	for {
		chunk, err := fc.ReadChunk(doneCtx)
		if err == io.EOF {
			break
		}
		noErr(t, "ReadChunk", err)
		chunks = append(chunks, string(chunk))
	}
	if len(chunks) != 2 || chunks[0] != "hello" || chunks[1] != "world" {
		t.Fatalf("chunks = %q", chunks)
	}
}

func TestGroupGetFrameByIndex(t *testing.T) {
	g := newTestGroup(t)
	noErr(t, "WriteFrame", g.WriteFrame([]byte("a")))
	noErr(t, "WriteFrame", g.WriteFrame([]byte("bb")))
	noErr(t, "Finish", g.Finish())

	c := g.Consume()
	for i, want := range []uint64{1, 2} {
		f, err := c.GetFrame(doneCtx, i)
		noErr(t, "GetFrame", err)
		if f == nil || f.Size() != want {
			t.Fatalf("GetFrame(%d) = %v", i, f)
		}
	}
	f, err := c.GetFrame(doneCtx, 2)
	if f != nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetFrame(2) = %v, %v; want ErrNotFound", f, err)
	}
}

func TestGroupFinishReturnsNone(t *testing.T) {
	g := newTestGroup(t)
	noErr(t, "Finish", g.Finish())
	groupEndsNow(t, g.Consume())
}

func TestGroupAbortPropagates(t *testing.T) {
	g := newTestGroup(t)
	c := g.Consume()
	noErr(t, "Abort", g.Abort(ErrCancel))
	_, err := c.NextFrame(doneCtx)
	isErr(t, "NextFrame", err, ErrCancel)
	_, err = c.Finished(doneCtx)
	isErr(t, "Finished", err, ErrCancel)
	isErr(t, "WriteFrame", g.WriteFrame([]byte("x")), ErrCancel)
}

func TestGroupAbortCascadesToFrames(t *testing.T) {
	g := newTestGroup(t)
	f, err := g.CreateFrame(FrameInfo{Size: 4})
	noErr(t, "CreateFrame", err)
	defer f.Close()
	noErr(t, "Write", f.Write([]byte("ab")))
	fc := nextFrameNow(t, g.Consume())

	noErr(t, "Abort", g.Abort(ErrTimeout))
	_, err = fc.ReadAll(doneCtx)
	isErr(t, "ReadAll", err, ErrTimeout)
	isErr(t, "Write", f.Write([]byte("cd")), ErrTimeout)
}

func TestGroupPendingThenReady(t *testing.T) {
	g := newTestGroup(t)
	c := g.Consume()
	if _, err := c.NextFrame(doneCtx); !wouldBlock(err) {
		t.Fatalf("NextFrame should block, got %v", err)
	}
	noErr(t, "WriteFrame", g.WriteFrame([]byte("data")))
	noErr(t, "Finish", g.Finish())
	if f := nextFrameNow(t, c); f.Size() != 4 {
		t.Fatalf("Size = %d", f.Size())
	}
}

func TestGroupEvictionDropsOldFrames(t *testing.T) {
	g := newTestGroup(t)
	big := make([]byte, MaxGroupBytes)
	noErr(t, "WriteFrame", g.WriteFrame(big))
	noErr(t, "WriteFrame", g.WriteFrame(big))

	c := g.Consume()
	_, err := c.GetFrame(doneCtx, 0)
	isErr(t, "GetFrame(0)", err, ErrCacheFull)
	f, err := c.GetFrame(doneCtx, 1)
	noErr(t, "GetFrame(1)", err)
	if f.Size() != MaxGroupBytes {
		t.Fatalf("Size = %d", f.Size())
	}
	if n := g.FrameCount(); n != 2 {
		t.Fatalf("FrameCount = %d, want 2 (evicted frames count)", n)
	}
}

func TestGroupNoEvictionUnderLimit(t *testing.T) {
	g := newTestGroup(t)
	noErr(t, "WriteFrame", g.WriteFrame([]byte("small")))
	noErr(t, "WriteFrame", g.WriteFrame([]byte("frames")))
	noErr(t, "Finish", g.Finish())

	c := g.Consume()
	for i, want := range []uint64{5, 6} {
		f, err := c.GetFrame(doneCtx, i)
		noErr(t, "GetFrame", err)
		if f.Size() != want {
			t.Fatalf("GetFrame(%d).Size = %d", i, f.Size())
		}
	}
}

func TestGroupEvictionByFrameCount(t *testing.T) {
	g := newTestGroup(t)
	for range MaxGroupFrames + 1 {
		noErr(t, "WriteFrame", g.WriteFrame([]byte("x")))
	}
	c := g.Consume()
	_, err := c.GetFrame(doneCtx, 0)
	isErr(t, "GetFrame(0)", err, ErrCacheFull)
	f, err := c.GetFrame(doneCtx, MaxGroupFrames)
	noErr(t, "GetFrame(last)", err)
	if f.Size() != 1 {
		t.Fatalf("Size = %d", f.Size())
	}
}

func TestGroupNextFrameCacheFull(t *testing.T) {
	g := newTestGroup(t)
	c := g.Consume() // created before the eviction: its next frame goes away
	big := make([]byte, MaxGroupBytes)
	noErr(t, "WriteFrame", g.WriteFrame(big))
	noErr(t, "WriteFrame", g.WriteFrame(big))

	_, err := c.NextFrame(doneCtx)
	isErr(t, "NextFrame", err, ErrCacheFull)
	_, err = c.ReadFrame(doneCtx)
	isErr(t, "ReadFrame", err, ErrCacheFull)
	// A reader that is already past the evicted frame is unaffected.
	late := g.Consume()
	if _, err := late.GetFrame(doneCtx, 1); err != nil {
		t.Fatalf("GetFrame(1): %v", err)
	}
}

func TestGroupCloneConsumerIndependent(t *testing.T) {
	g := newTestGroup(t)
	noErr(t, "WriteFrame", g.WriteFrame([]byte("a")))

	c1 := g.Consume()
	nextFrameNow(t, c1)
	c2 := c1.Clone() // inherits the position past the first frame

	noErr(t, "WriteFrame", g.WriteFrame([]byte("b")))
	noErr(t, "Finish", g.Finish())

	data, err := c2.ReadFrame(doneCtx)
	noErr(t, "ReadFrame", err)
	if string(data) != "b" {
		t.Fatalf("clone read %q, want b", data)
	}
	groupEndsNow(t, c2)
	// The original is not moved by its clone.
	if data, err := c1.ReadFrame(doneCtx); err != nil || string(data) != "b" {
		t.Fatalf("original read %q, %v", data, err)
	}
}

func TestGroupFinished(t *testing.T) {
	g := newTestGroup(t)
	c := g.Consume()
	if _, err := c.Finished(doneCtx); !wouldBlock(err) {
		t.Fatalf("Finished should block, got %v", err)
	}
	for range 3 {
		noErr(t, "WriteFrame", g.WriteFrame([]byte("x")))
	}
	noErr(t, "Finish", g.Finish())
	n, err := c.Finished(doneCtx)
	noErr(t, "Finished", err)
	if n != 3 {
		t.Fatalf("Finished = %d, want 3", n)
	}
	isErr(t, "WriteFrame after Finish", g.WriteFrame([]byte("x")), ErrClosed)
	_, err = g.CreateFrame(FrameInfo{Size: 1})
	isErr(t, "CreateFrame after Finish", err, ErrClosed)
}

func TestGroupDropped(t *testing.T) {
	tests := []struct {
		name    string
		finish  bool
		clones  int
		wantErr error
	}{
		{"unfinished", false, 0, ErrDropped},
		{"unfinished with closed clones", false, 2, ErrDropped},
		{"finished", true, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGroup(t)
			noErr(t, "WriteFrame", g.WriteFrame([]byte("x")))
			c := g.Consume()
			var clones []*GroupProducer
			for range tt.clones {
				clones = append(clones, g.Clone())
			}
			if tt.finish {
				noErr(t, "Finish", g.Finish())
			}
			g.Close()
			for i, cl := range clones {
				if i == 0 {
					// A remaining clone keeps the group open.
					if _, err := c.Finished(doneCtx); !wouldBlock(err) {
						t.Fatalf("group ended with a clone open: %v", err)
					}
				}
				cl.Close()
			}
			nextFrameNow(t, c)
			if tt.wantErr == nil {
				groupEndsNow(t, c)
				return
			}
			_, err := c.NextFrame(doneCtx)
			isErr(t, "NextFrame", err, tt.wantErr)
			_, err = c.ReadFrame(doneCtx)
			isErr(t, "ReadFrame", err, tt.wantErr)
			_, err = c.Finished(doneCtx)
			isErr(t, "Finished", err, tt.wantErr)
			isErr(t, "WriteFrame on closed handle", g.WriteFrame(nil), ErrClosed)
		})
	}
}

func TestGroupDroppedFrameProducer(t *testing.T) {
	g := newTestGroup(t)
	f, err := g.CreateFrame(FrameInfo{Size: 3})
	noErr(t, "CreateFrame", err)
	noErr(t, "Finish", g.Finish())
	g.Close() // the group is finished; its frame still has its producer

	c := g.Consume()
	if _, err := c.ReadFrame(doneCtx); !wouldBlock(err) {
		t.Fatalf("ReadFrame should wait for the frame, got %v", err)
	}
	f.Close()
	_, err = c.ReadFrame(doneCtx)
	isErr(t, "ReadFrame", err, ErrDropped)
}

func TestGroupWaitersWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newTestGroup(t)
		const readers = 16
		var wg sync.WaitGroup
		got := make([][][]byte, readers)
		errs := make([]error, readers)
		for i := range readers {
			c := g.Consume()
			wg.Go(func() {
				for {
					data, err := c.ReadFrame(context.Background())
					if err != nil {
						if err != io.EOF {
							errs[i] = err
						}
						return
					}
					got[i] = append(got[i], data)
				}
			})
		}
		payloads := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
		for _, p := range payloads {
			synctest.Wait()
			noErr(t, "WriteFrame", g.WriteFrame(p))
		}
		synctest.Wait()
		noErr(t, "Finish", g.Finish())
		wg.Wait()
		for i := range readers {
			noErr(t, "reader", errs[i])
			if len(got[i]) != len(payloads) {
				t.Fatalf("reader %d got %d frames", i, len(got[i]))
			}
			for j, p := range payloads {
				if &got[i][j][0] != &p[0] {
					t.Fatalf("reader %d frame %d is a copy", i, j)
				}
			}
		}
	})
}

func TestGroupClosedHandle(t *testing.T) {
	g := newTestGroup(t)
	g.Close()
	isErr(t, "WriteFrame", g.WriteFrame([]byte("x")), ErrClosed)
	_, err := g.CreateFrame(FrameInfo{Size: 1})
	isErr(t, "CreateFrame", err, ErrClosed)
	isErr(t, "Finish", g.Finish(), ErrClosed)
	isErr(t, "Abort", g.Abort(nil), ErrClosed)
}

func TestGroupGetFrameNegative(t *testing.T) {
	g := newTestGroup(t)
	_, err := g.Consume().GetFrame(doneCtx, -1)
	isErr(t, "GetFrame(-1)", err, ErrBoundsExceeded)
}

func TestGroupConcurrentWritersAndReaders(t *testing.T) {
	const (
		writers   = 4
		perWriter = 100
		readers   = 8
	)
	g := newTestGroup(t)
	var rwg sync.WaitGroup
	seen := make([][]byte, readers)
	errs := make([]error, readers)
	for i := range readers {
		c := g.Consume()
		rwg.Go(func() {
			for {
				data, err := c.ReadFrame(context.Background())
				if err == io.EOF {
					return
				}
				if err != nil {
					errs[i] = err
					return
				}
				seen[i] = append(seen[i], data[0])
			}
		})
	}
	var wwg sync.WaitGroup
	for w := range writers {
		wg := g.Clone()
		wwg.Go(func() {
			defer wg.Close()
			for range perWriter {
				if err := wg.WriteFrame([]byte{byte(w)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wwg.Wait()
	noErr(t, "Finish", g.Finish())
	rwg.Wait()
	for i := range readers {
		noErr(t, "reader", errs[i])
		if len(seen[i]) != writers*perWriter {
			t.Fatalf("reader %d saw %d frames", i, len(seen[i]))
		}
		// Every reader sees the frames in the one order they were cached.
		if string(seen[i]) != string(seen[0]) {
			t.Fatalf("reader %d saw another order", i)
		}
	}
}

func TestGroupCreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		start := time.Now()
		time.Sleep(time.Minute)
		g := createGroup(t, p, 0)
		if got := g.Consume().Created(); !got.Equal(start.Add(time.Minute)) {
			t.Fatalf("Created = %v, want %v", got, start.Add(time.Minute))
		}
	})
}

// collectFrames ranges over c.Frames(ctx) to the end, without breaking, and
// returns the payloads and the errors it yielded.
func collectFrames(t *testing.T, ctx context.Context, c *GroupConsumer) (frames []string, errs []error) {
	t.Helper()
	for data, err := range c.Frames(ctx) {
		if err != nil {
			if data != nil {
				t.Errorf("Frames yielded %q with error %v", data, err)
			}
			errs = append(errs, err)
			if len(errs) > 1 {
				break // it should have stopped by itself: fail, not spin
			}
			continue // the iterator must stop by itself
		}
		frames = append(frames, string(data))
	}
	return frames, errs
}

func TestGroupFramesIterator(t *testing.T) {
	tests := []struct {
		name    string
		frames  int
		end     func(t *testing.T, g *GroupProducer)
		wantN   int   // frames yielded
		wantErr error // nil: a clean end
	}{
		{"finished", 3, func(_ *testing.T, g *GroupProducer) { _ = g.Finish() }, 3, nil},
		{"finished empty", 0, func(_ *testing.T, g *GroupProducer) { _ = g.Finish() }, 0, nil},
		{"aborted", 2, func(_ *testing.T, g *GroupProducer) { _ = g.Abort(ErrTimeout) }, 2, ErrTimeout},
		{"dropped", 2, func(_ *testing.T, g *GroupProducer) { g.Close() }, 2, ErrDropped},
		{"aborted with a wrapped io.EOF", 1, func(_ *testing.T, g *GroupProducer) { _ = g.Abort(fmt.Errorf("source: %w", io.EOF)) }, 1, io.EOF},
		{"frame aborted", 2, func(t *testing.T, g *GroupProducer) {
			f, err := g.CreateFrame(FrameInfo{Size: 4})
			noErr(t, "CreateFrame", err)
			t.Cleanup(f.Close)
			noErr(t, "Write", f.Write([]byte("ab")))
			noErr(t, "Abort", f.Abort(ErrWrongSize))
			_ = g.Finish()
		}, 2, ErrWrongSize},
		{"open", 2, func(*testing.T, *GroupProducer) {}, 2, context.Canceled}, // the context ends it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGroup(t)
			for i := range tt.frames {
				noErr(t, "WriteFrame", g.WriteFrame(fmt.Appendf(nil, "f%d", i)))
			}
			c := g.Consume()
			tt.end(t, g)
			frames, errs := collectFrames(t, doneCtx, c)
			if len(frames) != tt.wantN {
				t.Fatalf("yielded %q, want %d frames", frames, tt.wantN)
			}
			for i, f := range frames {
				if f != fmt.Sprintf("f%d", i) {
					t.Fatalf("yielded %q, want f0..f%d in order", frames, tt.wantN-1)
				}
			}
			checkIterEnd(t, errs, tt.wantErr)
		})
	}
}

func TestGroupFramesCacheFull(t *testing.T) {
	g := newTestGroup(t)
	c := g.Consume() // its first frame is evicted before it reads
	big := make([]byte, MaxGroupBytes)
	noErr(t, "WriteFrame", g.WriteFrame(big))
	noErr(t, "WriteFrame", g.WriteFrame(big))
	noErr(t, "Finish", g.Finish())
	frames, errs := collectFrames(t, doneCtx, c)
	if len(frames) != 0 || len(errs) != 1 || !errors.Is(errs[0], ErrCacheFull) {
		t.Fatalf("Frames yielded %d frames, errors %v; want only ErrCacheFull", len(frames), errs)
	}
}

func TestGroupFramesBreak(t *testing.T) {
	g := newTestGroup(t)
	for _, p := range []string{"a", "b", "c"} {
		noErr(t, "WriteFrame", g.WriteFrame([]byte(p)))
	}
	c := g.Consume()
	for data, err := range c.Frames(doneCtx) {
		noErr(t, "Frames", err)
		if string(data) != "a" {
			t.Fatalf("first frame %q", data)
		}
		break
	}
	// Breaking consumed only the frame yielded.
	if data, err := c.ReadFrame(doneCtx); err != nil || string(data) != "b" {
		t.Fatalf("after break: ReadFrame = %q, %v; want b", data, err)
	}
}

// TestGroupEnds checks the end of a group's sequence: io.EOF itself from
// NextFrame and ReadFrame, ErrNotFound from GetFrame past the end.
func TestGroupEnds(t *testing.T) {
	g := newTestGroup(t)
	noErr(t, "WriteFrame", g.WriteFrame([]byte("x")))
	c := g.Consume()
	nextFrameNow(t, c)
	if _, err := c.GetFrame(doneCtx, 1); !wouldBlock(err) {
		t.Fatalf("GetFrame(1) of an open group = %v, want it to wait", err)
	}
	noErr(t, "Finish", g.Finish())
	groupEndsNow(t, c)
	groupEndsNow(t, c) // and stays ended
	if data, err := c.ReadFrame(doneCtx); data != nil || err != io.EOF {
		t.Fatalf("ReadFrame = %q, %v; want io.EOF", data, err)
	}
	for _, i := range []int{1, 5} {
		f, err := c.GetFrame(doneCtx, i)
		if f != nil || !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetFrame(%d) = %v, %v; want ErrNotFound", i, f, err)
		}
	}
	if f, err := c.GetFrame(doneCtx, 0); err != nil || f.Size() != 1 {
		t.Fatalf("GetFrame(0) = %v, %v", f, err)
	}
}

func TestNewGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(time.Hour)
		g := NewGroup(42)
		t.Cleanup(g.Close)
		c := g.Consume()
		if g.Sequence() != 42 || c.Sequence() != 42 {
			t.Fatalf("Sequence = %d, %d; want 42", g.Sequence(), c.Sequence())
		}
		if !c.Created().Equal(time.Now()) {
			t.Fatalf("Created = %v, want now (%v)", c.Created(), time.Now())
		}
		if _, err := c.NextFrame(doneCtx); !wouldBlock(err) {
			t.Fatalf("NextFrame of an empty group = %v, want it to wait", err)
		}
		noErr(t, "WriteFrameAt", g.WriteFrameAt([]byte("a"), 5))
		f, err := g.CreateFrame(FrameInfo{Size: 2})
		noErr(t, "CreateFrame", err)
		noErr(t, "Write", f.Write([]byte("bc")))
		f.Close()
		noErr(t, "Finish", g.Finish())
		frames, errs := collectFrames(t, doneCtx, c)
		if fmt.Sprint(frames) != "[a bc]" || len(errs) != 0 {
			t.Fatalf("frames %q, errors %v", frames, errs)
		}
		if n, err := g.Consume().Finished(doneCtx); err != nil || n != 2 || g.FrameCount() != 2 {
			t.Fatalf("Finished = %d, %v; FrameCount %d", n, err, g.FrameCount())
		}
	})
}

func TestNewGroupDropped(t *testing.T) {
	g := NewGroup(1)
	clone := g.Clone()
	c := g.Consume()
	noErr(t, "WriteFrame", g.WriteFrame([]byte("x")))
	g.Close()
	if _, err := c.Finished(doneCtx); !wouldBlock(err) {
		t.Fatalf("group ended with a clone open: %v", err)
	}
	clone.Close()
	frames, errs := collectFrames(t, doneCtx, c)
	if fmt.Sprint(frames) != "[x]" || len(errs) != 1 || !errors.Is(errs[0], ErrDropped) {
		t.Fatalf("frames %q, errors %v; want x then ErrDropped", frames, errs)
	}
}

func TestNewGroupIsInNoTrack(t *testing.T) {
	p := newTestTrack(t)
	c := consume(t, p)
	g := NewGroup(0)
	t.Cleanup(g.Close)
	noErr(t, "Finish", g.Finish())
	noGroupYet(t, c)
	if _, ok := c.Latest(); ok {
		t.Fatal("a group in no track reached a track")
	}
	// The track can still create its own group 0.
	createGroup(t, p, 0)
}
