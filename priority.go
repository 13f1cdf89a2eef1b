package moq

import (
	"sync"

	"github.com/moqgo/moq/transport"
)

// maxUrgency is the least urgent send priority a transport understands.
const maxUrgency = 7

// priorityQueue ranks a session's open group streams so the transport sends
// the most important first: higher track priority first, then newer groups.
// The rank maps onto the transport's urgency levels 0..7; streams ranked 7th or
// lower share the last level.
type priorityQueue struct {
	mu    sync.Mutex
	items []*priorityItem // most important first
}

type priorityItem struct {
	q       *priorityQueue
	track   uint8
	group   uint64
	st      transport.SendStream
	urgency int // last urgency given to st; -1 before the first
}

func newPriorityQueue() *priorityQueue { return &priorityQueue{} }

// before reports whether a is sent before b.
func (a *priorityItem) before(b *priorityItem) bool {
	if a.track != b.track {
		return a.track > b.track
	}
	return a.group > b.group
}

// insert ranks a new stream and sets its urgency.
func (q *priorityQueue) insert(track uint8, group uint64, st transport.SendStream) *priorityItem {
	it := &priorityItem{q: q, track: track, group: group, st: st, urgency: -1}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.apply(q.place(it))
	return it
}

// remove drops a finished stream from the ranking.
func (it *priorityItem) remove() {
	q := it.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := q.unlink(it); i >= 0 {
		q.apply(i)
	}
}

// setTrackPriority re-ranks a stream whose subscription changed priority.
func (it *priorityItem) setTrackPriority(track uint8) {
	q := it.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.track == track {
		return
	}
	i := q.unlink(it)
	it.track = track
	j := q.place(it)
	if i >= 0 {
		j = min(i, j)
	}
	q.apply(j)
}

// place inserts it at its rank and returns the rank.
func (q *priorityQueue) place(it *priorityItem) int {
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
func (q *priorityQueue) unlink(it *priorityItem) int {
	for i, other := range q.items {
		if other == it {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return i
		}
	}
	return -1
}

// apply updates the urgency of every stream ranked from index on. Streams
// ranked at or below maxUrgency all share the last level, so the walk stops at
// the first of them that already has it.
func (q *priorityQueue) apply(from int) {
	for i := from; i < len(q.items); i++ {
		it := q.items[i]
		u := min(i, maxUrgency)
		if it.urgency == u {
			if i >= maxUrgency {
				return
			}
			continue
		}
		it.urgency = u
		it.st.SetPriority(u)
	}
}
