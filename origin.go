package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"sync"
)

// Announce reports a change at a broadcast path, relative to the consumer's
// root: Broadcast is the broadcast now active there, or nil when the path
// was unannounced.
type Announce struct {
	Path      Path
	Broadcast *BroadcastConsumer
}

// origin is the tree of published broadcasts shared by every view of one
// origin. A single mutex guards the tree and the consumers' queues.
type origin struct {
	mu   sync.Mutex
	root *originNode
}

// originNode is one path segment of the tree.
type originNode struct {
	parent   *originNode
	name     string
	path     Path // absolute path of this node
	children map[string]*originNode

	// active is the broadcast announced here; backup holds older publishers
	// of the same path, the most recent last.
	active *BroadcastConsumer
	backup []*BroadcastConsumer

	// consumers registered at this node see every change in its subtree.
	consumers map[*originQueue]struct{}
}

// originQueue is the queue behind one Announcements.
type originQueue struct {
	o       *origin
	root    Path   // paths are reported relative to it
	regs    []Path // absolute paths of the nodes it is registered at
	items   []Announce
	head    int
	changed notifier
	closed  bool
}

// leafLocked returns the node at the absolute path full, creating it.
func (o *origin) leafLocked(full Path) *originNode {
	n := o.root
	for rest := full; rest != ""; {
		var name string
		name, rest = rest.NextPart()
		next, ok := n.children[name]
		if !ok {
			next = &originNode{parent: n, name: name, path: n.path.Join(Path(name))}
			if n.children == nil {
				n.children = make(map[string]*originNode)
			}
			n.children[name] = next
		}
		n = next
	}
	return n
}

// lookupLocked returns the node at the absolute path full, or nil.
func (o *origin) lookupLocked(full Path) *originNode {
	n := o.root
	for rest := full; rest != "" && n != nil; {
		var name string
		name, rest = rest.NextPart()
		n = n.children[name]
	}
	return n
}

// pruneLocked removes n and its ancestors while they hold nothing.
func (o *origin) pruneLocked(n *originNode) {
	for n != o.root && n.active == nil && len(n.children) == 0 && len(n.consumers) == 0 {
		delete(n.parent.children, n.name)
		n = n.parent
	}
}

// notifyLocked gives every consumer registered at n or above the changes for
// n's path: an unannouncement when gone is set, then an announcement of b
// when b is not nil.
func (o *origin) notifyLocked(n *originNode, gone bool, b *BroadcastConsumer) {
	for a := n; a != nil; a = a.parent {
		for q := range a.consumers {
			rel, _ := n.path.StripPrefix(q.root)
			if gone {
				q.push(Announce{Path: rel})
			}
			if b != nil {
				q.push(Announce{Path: rel, Broadcast: b})
			}
		}
	}
}

// publishLocked makes b the active broadcast at full, keeping a previous one
// as backup. A broadcast that came through more relays than the active one
// only becomes a backup: the shortest path wins, the newest among equals.
func (o *origin) publishLocked(full Path, b *BroadcastConsumer) {
	n := o.leafLocked(full)
	if n.active != nil {
		if b.hopCount() > n.active.hopCount() {
			n.backup = append(n.backup, b)
			return
		}
		n.backup = append(n.backup, n.active)
		n.active = b
		o.notifyLocked(n, true, b)
		return
	}
	n.active = b
	o.notifyLocked(n, false, b)
}

// bestBackupLocked returns the index of the backup to promote: the fewest
// hops, the most recent among equals.
func (n *originNode) bestBackupLocked() int {
	best, bestHops := -1, 0
	for i, b := range n.backup {
		if h := b.hopCount(); best < 0 || h <= bestHops {
			best, bestHops = i, h
		}
	}
	return best
}

// remove withdraws b from full after it ended: a backup simply disappears;
// the active broadcast is replaced by the best backup (re-announced) or
// unannounced when there is none.
func (o *origin) remove(full Path, b *BroadcastConsumer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.lookupLocked(full)
	if n == nil || n.active == nil {
		return
	}
	if i := slices.IndexFunc(n.backup, b.SameBroadcast); i >= 0 {
		n.backup = slices.Delete(n.backup, i, i+1)
		return
	}
	if !n.active.SameBroadcast(b) {
		return
	}
	if i := n.bestBackupLocked(); i >= 0 {
		n.active = n.backup[i]
		n.backup = slices.Delete(n.backup, i, i+1)
		o.notifyLocked(n, true, n.active)
		return
	}
	n.active = nil
	o.notifyLocked(n, true, nil)
	o.pruneLocked(n)
}

// push queues a change and wakes the consumer. Called with o.mu held.
func (q *originQueue) push(a Announce) {
	if q.closed {
		return
	}
	q.items = append(q.items, a)
	q.changed.notify()
}

// popLocked dequeues the oldest change.
func (q *originQueue) popLocked() (Announce, bool) {
	if q.head == len(q.items) {
		return Announce{}, false
	}
	a := q.items[q.head]
	q.items[q.head] = Announce{}
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head >= 64 && 2*q.head >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return a, true
}

// initialLocked queues every broadcast active in n's subtree, parents
// before children and siblings in name order.
func (q *originQueue) initialLocked(n *originNode) {
	if n.active != nil {
		rel, _ := n.path.StripPrefix(q.root)
		q.push(Announce{Path: rel, Broadcast: n.active})
	}
	for _, name := range slices.Sorted(maps.Keys(n.children)) {
		q.initialLocked(n.children[name])
	}
}

// close unregisters the queue from the tree and drops pending changes.
func (q *originQueue) close() {
	o := q.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	for _, reg := range q.regs {
		if n := o.lookupLocked(reg); n != nil {
			delete(n.consumers, q)
			o.pruneLocked(n)
		}
	}
	q.items, q.head = nil, 0
	q.changed.notify()
}

// originScope is what a view of an origin may see: paths relative to root,
// restricted to the allowed prefixes (relative to root, non-overlapping, in
// canonical order).
type originScope struct {
	o       *origin
	root    Path
	allowed []Path
}

// resolve returns the absolute path for path, or ErrUnauthorized when the
// scope does not allow it.
func (s originScope) resolve(path Path) (Path, error) {
	path = path.clean()
	for _, p := range s.allowed {
		if path.HasPrefix(p) {
			return s.root.Join(path), nil
		}
	}
	return "", fmt.Errorf("%w: %q is outside %q", ErrUnauthorized, path, s.allowed)
}

// only narrows the scope to the given prefixes, keeping the narrower of
// each overlapping pair. It fails with ErrUnauthorized when none is allowed.
func (s originScope) only(prefixes []Path) (originScope, error) {
	want := prefixSet(prefixes)
	var out []Path
	for _, r := range s.allowed {
		for _, p := range want {
			switch {
			case r.HasPrefix(p):
				out = append(out, r)
			case p.HasPrefix(r):
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		return s, fmt.Errorf("%w: none of %q is within %q", ErrUnauthorized, want, s.allowed)
	}
	s.allowed = prefixSet(out)
	return s, nil
}

// withRoot moves the root down to prefix, keeping only what is allowed
// below it. It fails with ErrUnauthorized when nothing is.
func (s originScope) withRoot(prefix Path) (originScope, error) {
	prefix = prefix.clean()
	var out []Path
	for _, r := range s.allowed {
		if rest, ok := r.StripPrefix(prefix); ok {
			out = append(out, rest)
		} else if prefix.HasPrefix(r) {
			out = append(out, "")
		}
	}
	if len(out) == 0 {
		return s, fmt.Errorf("%w: nothing below %q is within %q", ErrUnauthorized, prefix, s.allowed)
	}
	s.root = s.root.Join(prefix)
	s.allowed = prefixSet(out)
	return s, nil
}

// consumeBroadcast returns the broadcast active at path.
func (s originScope) consumeBroadcast(path Path) (*BroadcastConsumer, error) {
	full, err := s.resolve(path)
	if err != nil {
		return nil, err
	}
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	if n := s.o.lookupLocked(full); n != nil && n.active != nil {
		return n.active, nil
	}
	return nil, fmt.Errorf("%w: no broadcast at %q", ErrNotFound, path.clean())
}

// OriginProducer publishes broadcasts into an origin, within its scope: a
// root stripped from (prepended to) every path, and the prefixes it may
// publish under. It is a plain value: views need no Close.
type OriginProducer struct {
	scope originScope
}

// NewOrigin creates an empty origin and returns an unrestricted producer.
func NewOrigin() *OriginProducer {
	return &OriginProducer{scope: originScope{o: &origin{root: &originNode{}}, allowed: []Path{""}}}
}

// PublishBroadcast announces b at path; it fails with ErrUnauthorized when
// the path is not allowed. The broadcast is unannounced automatically when
// it ends. Publishing over an active broadcast makes the new one active
// (re-announced) and keeps the older one as backup; if the newer one ends
// first, the backup is re-announced. A broadcast with more hops (see
// BroadcastProducer.SetHops) than the active one only becomes a backup, and
// the backup promoted is the one with the fewest hops. A broadcast that
// already ended is accepted but not announced.
func (o *OriginProducer) PublishBroadcast(path Path, b *BroadcastConsumer) error {
	if b == nil {
		return errors.New("moq: PublishBroadcast of a nil broadcast")
	}
	full, err := o.scope.resolve(path)
	if err != nil {
		return err
	}
	or := o.scope.o
	or.mu.Lock()
	defer or.mu.Unlock()
	if b.state.addEndHook(func() { or.remove(full, b) }) {
		or.publishLocked(full, b)
	}
	return nil
}

// CreateBroadcast creates a broadcast, publishes it at path and returns its
// producer. It fails with ErrUnauthorized when the path is not allowed.
func (o *OriginProducer) CreateBroadcast(path Path) (*BroadcastProducer, error) {
	b := NewBroadcast()
	if err := o.PublishBroadcast(path, b.Consume()); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// ConsumeBroadcast returns the broadcast announced at path: see
// OriginConsumer.ConsumeBroadcast.
func (o *OriginProducer) ConsumeBroadcast(path Path) (*BroadcastConsumer, error) {
	return o.scope.consumeBroadcast(path)
}

// Consume returns a read-only view of the producer's scope.
func (o *OriginProducer) Consume() *OriginConsumer { return &OriginConsumer{scope: o.scope} }

// PublishOnly returns a producer that may only publish under the given
// prefixes (relative to the root). It fails with ErrUnauthorized when the
// scope allows none of them.
func (o *OriginProducer) PublishOnly(prefixes ...Path) (*OriginProducer, error) {
	s, err := o.scope.only(prefixes)
	if err != nil {
		return nil, err
	}
	return &OriginProducer{scope: s}, nil
}

// WithRoot returns a producer whose paths are relative to prefix (itself
// relative to the current root). It fails with ErrUnauthorized when nothing
// below prefix is allowed.
func (o *OriginProducer) WithRoot(prefix Path) (*OriginProducer, error) {
	s, err := o.scope.withRoot(prefix)
	if err != nil {
		return nil, err
	}
	return &OriginProducer{scope: s}, nil
}

// Root returns the absolute prefix of this producer's paths.
func (o *OriginProducer) Root() Path { return o.scope.root }

// Allowed returns the prefixes, relative to the root, this producer may
// publish under.
func (o *OriginProducer) Allowed() []Path { return slices.Clone(o.scope.allowed) }

// OriginConsumer is a read-only view of an origin within a scope: a root
// stripped from every path and the prefixes it may see. It looks broadcasts
// up and opens announcement queues. It is a plain value: it holds no
// resources and needs no Close, so a session can keep one for its whole life.
type OriginConsumer struct {
	scope originScope
}

// ConsumeBroadcast returns the broadcast announced at path (relative to the
// root). It fails with ErrNotFound when none is, and with ErrUnauthorized
// when the path is outside the scope.
func (c *OriginConsumer) ConsumeBroadcast(path Path) (*BroadcastConsumer, error) {
	return c.scope.consumeBroadcast(path)
}

// ConsumeOnly returns a view restricted to the given prefixes. It fails with
// ErrUnauthorized when the scope allows none of them.
func (c *OriginConsumer) ConsumeOnly(prefixes ...Path) (*OriginConsumer, error) {
	s, err := c.scope.only(prefixes)
	if err != nil {
		return nil, err
	}
	return &OriginConsumer{scope: s}, nil
}

// WithRoot returns a view whose paths are relative to prefix. It fails with
// ErrUnauthorized when nothing below prefix is allowed.
func (c *OriginConsumer) WithRoot(prefix Path) (*OriginConsumer, error) {
	s, err := c.scope.withRoot(prefix)
	if err != nil {
		return nil, err
	}
	return &OriginConsumer{scope: s}, nil
}

// Root returns the absolute prefix stripped from the view's paths.
func (c *OriginConsumer) Root() Path { return c.scope.root }

// Allowed returns the prefixes, relative to the root, this view sees.
func (c *OriginConsumer) Allowed() []Path { return slices.Clone(c.scope.allowed) }

// Announcements opens a queue of the view's announcements: first the
// broadcasts already announced, then every change. It buffers every change
// until read, so Close it once it is no longer read.
func (c *OriginConsumer) Announcements() *Announcements {
	s := c.scope
	q := &originQueue{o: s.o, root: s.root}
	s.o.mu.Lock()
	for _, p := range s.allowed {
		full := s.root.Join(p)
		n := s.o.leafLocked(full)
		if n.consumers == nil {
			n.consumers = make(map[*originQueue]struct{})
		}
		n.consumers[q] = struct{}{}
		q.regs = append(q.regs, full)
		q.initialLocked(n)
	}
	s.o.mu.Unlock()
	a := &Announcements{q: q}
	attach(&a.h, a, (*originQueue).close, q)
	return a
}

// Announcements is a queue of the announcements of an origin view, with
// their paths relative to the view's root. Close stops it; it is required
// for prompt cleanup (an unreachable open queue is only released whenever
// the garbage collector notices).
type Announcements struct {
	q *originQueue
	h handle
}

// Next waits for the next announcement. It returns io.EOF after Close.
func (a *Announcements) Next(ctx context.Context) (Announce, error) {
	o := a.q.o
	for {
		o.mu.Lock()
		if an, ok := a.q.popLocked(); ok {
			o.mu.Unlock()
			return an, nil
		}
		if a.q.closed {
			o.mu.Unlock()
			return Announce{}, io.EOF
		}
		ch := a.q.changed.wait()
		o.mu.Unlock()
		if err := block(ctx, ch); err != nil {
			return Announce{}, err
		}
	}
}

// TryNext returns the next announcement if one is queued.
func (a *Announcements) TryNext() (Announce, bool) {
	o := a.q.o
	o.mu.Lock()
	defer o.mu.Unlock()
	return a.q.popLocked()
}

// All iterates over the announcements Next returns until Close. An error
// (ctx ending) is yielded once and ends the iteration.
func (a *Announcements) All(ctx context.Context) iter.Seq2[Announce, error] {
	return each(ctx, a.Next)
}

// Close stops the queue: pending announcements are dropped and Next returns
// io.EOF. It is idempotent.
func (a *Announcements) Close() {
	if a.h.close() {
		a.q.close()
	}
}
