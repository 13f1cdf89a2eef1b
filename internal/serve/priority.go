// Package serve is the machinery protocol engines share to serve the peer's
// subscriptions: the ranking of group streams onto the transport's send
// urgencies, the serving of one subscription (start and end groups, group
// order, max-latency expiry, the bound on group streams in flight, and the
// bookkeeping of what was delivered or dropped), and the rule deciding when a
// bandwidth estimate is worth reporting. Engines supply the wire format.
package serve

import (
	"sync"

	"github.com/moqgo/moq/transport"
)

// ControlUrgency is the send urgency of control streams (0 is the most
// urgent), so that replies such as a drop report are not starved by group
// data; group streams share the levels below it.
const ControlUrgency = 0

// The urgencies group streams are ranked onto.
const (
	minUrgency = 1
	maxUrgency = 7
)

// Priorities ranks a session's open group streams so the transport sends the
// most important first: higher track priority first, then newer groups, or
// older groups first for subscriptions that asked for group order. The rank
// maps onto the transport's urgency levels 1..7 (0 is for control streams);
// streams ranked 7th or lower share the last level. The zero value is ready.
type Priorities struct {
	mu    sync.Mutex
	items []*Item // most important first
}

// Item is one ranked stream.
type Item struct {
	q       *Priorities
	track   uint8
	ordered bool
	group   uint64
	st      transport.SendStream
	urgency int // last urgency given to st; -1 before the first
}

// before reports whether a is sent before b: higher track priority first;
// among equals, unordered streams (newest group first) before ordered ones
// (oldest group first).
func (a *Item) before(b *Item) bool {
	switch {
	case a.track != b.track:
		return a.track > b.track
	case a.ordered != b.ordered:
		return !a.ordered
	case a.ordered:
		return a.group < b.group
	default:
		return a.group > b.group
	}
}

// Insert ranks a new stream of the given track priority, group order and
// group sequence, and sets its urgency. Remove it when the stream is done.
func (q *Priorities) Insert(track uint8, ordered bool, group uint64, st transport.SendStream) *Item {
	it := &Item{q: q, track: track, ordered: ordered, group: group, st: st, urgency: -1}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.apply(q.place(it))
	return it
}

// Remove drops a finished stream from the ranking.
func (it *Item) Remove() {
	q := it.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := q.unlink(it); i >= 0 {
		q.apply(i)
	}
}

// SetOrder re-ranks a stream whose subscription changed its priority or
// group order.
func (it *Item) SetOrder(track uint8, ordered bool) {
	q := it.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.track == track && it.ordered == ordered {
		return
	}
	i := q.unlink(it)
	it.track, it.ordered = track, ordered
	j := q.place(it)
	if i >= 0 {
		j = min(i, j)
	}
	q.apply(j)
}

// place inserts it at its rank and returns the rank.
func (q *Priorities) place(it *Item) int {
	i := len(q.items)
	for i > 0 && it.before(q.items[i-1]) {
		i--
	}
	q.items = append(q.items, nil)
	copy(q.items[i+1:], q.items[i:])
	q.items[i] = it
	return i
}

// unlink removes it and returns the rank it had, or -1.
func (q *Priorities) unlink(it *Item) int {
	for i, other := range q.items {
		if other == it {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return i
		}
	}
	return -1
}

// apply updates the urgency of every stream ranked from index on. Streams
// ranked past the last level all share it, so the walk stops at the first
// of them that already has it.
func (q *Priorities) apply(from int) {
	for i := from; i < len(q.items); i++ {
		it := q.items[i]
		u := min(minUrgency+i, maxUrgency)
		if it.urgency == u {
			if u == maxUrgency {
				return
			}
			continue
		}
		it.urgency = u
		it.st.SetPriority(u)
	}
}
