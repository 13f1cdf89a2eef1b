package engine

import "sync"

// Goroutines runs goroutines that Stop waits for. Once Stop has begun no new
// one starts, so an owner can end cleanly: cancel what they wait on, then
// Stop. The zero value is ready to use.
type Goroutines struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// Spawn runs f on a new goroutine. It reports false, without running f,
// once Stop has begun.
func (g *Goroutines) Spawn(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Go(f)
	return true
}

// Stop lets no new goroutine start and waits for the running ones.
func (g *Goroutines) Stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.wg.Wait()
}
