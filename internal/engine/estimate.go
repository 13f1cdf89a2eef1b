package engine

import (
	"context"
	"sync"
	"time"
)

// Estimate is a bandwidth estimate the peer reported.
type Estimate struct {
	// Bitrate is the peer's estimate of its send rate to us, in bits per
	// second; 0 means unknown.
	Bitrate uint64
	// RTT is the round-trip time the peer measured; 0 means unknown.
	RTT time.Duration
	// Updates counts the reports received so far.
	Updates uint64
}

// Estimates holds the peer's latest estimate. The zero value is ready.
type Estimates struct {
	mu      sync.Mutex
	cur     Estimate
	changed chan struct{} // closed and replaced on every update
}

// Update records a report of the peer.
func (e *Estimates) Update(bitrate uint64, rtt time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cur.Bitrate, e.cur.RTT = bitrate, rtt
	e.cur.Updates++
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}

// Latest returns the latest report.
func (e *Estimates) Latest() Estimate {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur
}

// Wait waits until more than after reports arrived and returns the latest.
// It fails with ctx's error, or with the cause of done (the session's end).
func (e *Estimates) Wait(ctx, done context.Context, after uint64) (Estimate, error) {
	for {
		e.mu.Lock()
		cur := e.cur
		if e.changed == nil {
			e.changed = make(chan struct{})
		}
		changed := e.changed
		e.mu.Unlock()
		if cur.Updates > after {
			return cur, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Estimate{}, ctx.Err()
		case <-done.Done():
			return Estimate{}, context.Cause(done)
		}
	}
}
