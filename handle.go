package moq

import (
	"context"
	"io"
	"iter"
	"runtime"
	"sync/atomic"
)

// notifier wakes every goroutine waiting for a state change. It is guarded
// by the mutex of the state it belongs to; the channel is only allocated once
// somebody waits, and closing it wakes all waiters at once.
type notifier struct {
	ch chan struct{}
}

// wait returns a channel that is closed on the next notify.
func (n *notifier) wait() <-chan struct{} {
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// notify wakes all current waiters.
func (n *notifier) notify() {
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// block waits for ch or for ctx to end.
func block(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handle is the per-handle part of a reference-counted producer or consumer:
// the handle is released once, by Close or, as a safety net, by a runtime
// cleanup when it becomes unreachable.
type handle struct {
	closed  atomic.Bool
	cleanup runtime.Cleanup
}

// attach registers release(arg) to run if owner becomes unreachable while
// the handle is still open. arg must not reference owner.
func attach[T, S any](h *handle, owner *T, release func(S), arg S) {
	h.cleanup = runtime.AddCleanup(owner, release, arg)
}

// close reports whether this call released the handle; only the first call
// does, and it cancels the cleanup.
func (h *handle) close() bool {
	if !h.closed.CompareAndSwap(false, true) {
		return false
	}
	h.cleanup.Stop()
	return true
}

// isClosed reports whether the handle was released.
func (h *handle) isClosed() bool { return h.closed.Load() }

// each iterates over the values next returns until it reports io.EOF. Any
// other error is yielded once, with the zero value, and ends the iteration.
// Only io.EOF itself is the end, compared with == as io.Reader callers do:
// an abort reason that merely wraps io.EOF (an application's "source: EOF")
// is an error, as NextGroup and Closed report it.
func each[T any](ctx context.Context, next func(context.Context) (T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := next(ctx)
			if err == io.EOF {
				return
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}
