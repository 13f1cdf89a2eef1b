package moq

import "sync"

// goroutines runs goroutines that stop waits for. Once stop has begun no new
// one starts, so an owner can end cleanly: cancel what they wait on, then
// stop.
type goroutines struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// spawn runs f on a new goroutine. It reports false, without running f,
// once stop has begun.
func (g *goroutines) spawn(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Go(f)
	return true
}

// stop lets no new goroutine start and waits for the running ones.
func (g *goroutines) stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.wg.Wait()
}
