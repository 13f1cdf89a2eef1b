package serve

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/transport"
)

// nopStream is a group stream that goes nowhere.
type nopStream struct{ ctx context.Context }

func (s nopStream) Write(p []byte) (int, error) { return len(p), nil }
func (s nopStream) Close() error                { return nil }
func (s nopStream) CancelWrite(uint32)          {}
func (s nopStream) SetPriority(int)             {}
func (s nopStream) Context() context.Context    { return s.ctx }

// recorder is a Sender that records what a subscription sends; block, when
// set, holds every group until it is closed, and started then gets a value
// as each group starts.
type recorder struct {
	block   chan struct{}
	started chan struct{}

	mu      sync.Mutex
	groups  []uint64
	drops   [][2]uint64
	open    int // groups being written
	maxOpen int
}

func (r *recorder) OpenGroup(ctx context.Context) (transport.SendStream, error) {
	return nopStream{ctx: ctx}, nil
}

func (r *recorder) WriteGroup(ctx context.Context, _ transport.SendStream, g *moq.GroupConsumer) error {
	r.mu.Lock()
	r.open++
	r.maxOpen = max(r.maxOpen, r.open)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.open--
		r.groups = append(r.groups, g.Sequence())
		r.mu.Unlock()
	}()
	if r.block != nil {
		r.started <- struct{}{}
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *recorder) Drop(start, end uint64, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drops = append(r.drops, [2]uint64{start, end})
}

func (r *recorder) Code(error) uint32 { return 0 }

// TestRunEndGroup serves [0, 5] of a track missing group 3: every group
// present is written, 3 is reported dropped once group 6 shows the range
// is over, and Run returns.
func TestRunEndGroup(t *testing.T) {
	track := moq.NewTrack(moq.Track{Name: "t"})
	defer track.Close()
	for _, seq := range []uint64{0, 1, 2, 4, 5, 6} {
		g, err := track.CreateGroup(seq)
		if err != nil {
			t.Fatal(err)
		}
		_ = g.Finish()
		g.Close()
	}
	consumer := track.Consume()
	defer consumer.Close()
	var rec recorder
	sub := NewSubscription(consumer, engine.SubscribeOptions{Start: seq(0), End: seq(5)}, &Priorities{}, nil, &rec, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.Run(ctx); err != nil {
		t.Fatal(err)
	}
	slices.Sort(rec.groups)
	if want := []uint64{0, 1, 2, 4, 5}; !slices.Equal(rec.groups, want) {
		t.Errorf("wrote groups %v, want %v", rec.groups, want)
	}
	if want := [][2]uint64{{3, 3}}; !slices.Equal(rec.drops, want) {
		t.Errorf("dropped %v, want %v", rec.drops, want)
	}
}

// TestRunBoundsGroupsInFlight writes 3 × MaxGroupsInFlight groups to a peer
// that takes none of them until released: no more than MaxGroupsInFlight
// are ever written at once, and all are written once released.
func TestRunBoundsGroupsInFlight(t *testing.T) {
	const total = 3 * MaxGroupsInFlight
	track := moq.NewTrack(moq.Track{Name: "t"})
	defer track.Close()
	consumer := track.Consume()
	defer consumer.Close()
	rec := recorder{block: make(chan struct{}), started: make(chan struct{}, total)}
	sub := NewSubscription(consumer, engine.SubscribeOptions{Start: seq(0), End: seq(total - 1)}, &Priorities{}, nil, &rec, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	for range total {
		if err := track.WriteFrame([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range MaxGroupsInFlight {
		select {
		case <-rec.started:
		case <-ctx.Done():
			t.Fatalf("only %d groups started", i)
		}
	}
	close(rec.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rec.maxOpen != MaxGroupsInFlight || len(rec.groups) != total {
		t.Errorf("%d groups written, at most %d at once; want %d, at most %d", len(rec.groups), rec.maxOpen, total, MaxGroupsInFlight)
	}
}

// TestPoolBoundsSubscriptions runs two subscriptions to a peer that takes
// nothing until released, sharing a pool of 5 writers: no more than 5
// group streams are written at once over both.
func TestPoolBoundsSubscriptions(t *testing.T) {
	const groups = 20
	pool := NewPool(5)
	rec := recorder{block: make(chan struct{}), started: make(chan struct{}, 2*groups)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var runs sync.WaitGroup
	for range 2 {
		track := moq.NewTrack(moq.Track{Name: "t"})
		defer track.Close()
		consumer := track.Consume()
		defer consumer.Close()
		sub := NewSubscription(consumer, engine.SubscribeOptions{Start: seq(0), End: seq(groups - 1)}, &Priorities{}, pool, &rec, slog.New(slog.DiscardHandler))
		runs.Go(func() {
			if err := sub.Run(ctx); err != nil {
				t.Error(err)
			}
		})
		for range groups {
			if err := track.WriteFrame([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 5 {
		select {
		case <-rec.started:
		case <-ctx.Done():
			t.Fatalf("only %d groups started", i)
		}
	}
	close(rec.block)
	runs.Wait()
	if rec.maxOpen != 5 || len(rec.groups) != 2*groups {
		t.Errorf("%d groups written, at most %d at once; want %d, at most 5", len(rec.groups), rec.maxOpen, 2*groups)
	}
}
