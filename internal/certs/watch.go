package certs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// quietPeriod is how long the watched directories must stay quiet after
	// a change before the files are read: editors, certbot and Kubernetes
	// replace a pair in several steps.
	quietPeriod = 250 * time.Millisecond
	// maxDelay bounds how long a steady stream of changes can hold a
	// reload back.
	maxDelay = 2 * time.Second
	// recheckEvery bounds Run's sleeps in self-signed mode, so that a wall
	// clock that jumps, or a machine that was suspended, is noticed soon.
	recheckEvery = time.Hour
	// retryAfter is the wait after a failed renewal.
	retryAfter = time.Minute
	// maxLinks bounds the symbolic links followed from a configured file.
	maxLinks = 16
)

// ErrRunning is returned by Run while another call to Run is running.
var ErrRunning = errors.New("certs: Run is already running")

// Run keeps the certificates current until ctx is done, then returns nil.
// With files, it watches the directories that hold them (and, for symbolic
// links, the directories of each link target) and reloads the pairs once a
// burst of changes has settled; a failed reload is logged and the previous
// certificates stay. In self-signed mode it renews the certificate
// RenewBefore its expiry. Run fails only if the watcher cannot be started.
func (m *Manager) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer m.running.Store(false)
	if m.SelfSigned() {
		m.renewLoop(ctx)
		return nil
	}
	return m.watch(ctx)
}

// renewLoop renews the self-signed certificate when it is due.
func (m *Manager) renewLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := m.renewIfDue()
		wait := st.renewAt.Sub(m.now())
		if err != nil {
			m.log.Error("certs: renewing the self-signed certificate", "err", err)
			wait = retryAfter
		}
		t.Reset(min(max(wait, time.Second), recheckEvery))
	}
}

// watch reloads the pairs when their directories change.
func (m *Manager) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("certs: watching the certificate files: %w", err)
	}
	defer w.Close()
	m.syncWatches(w)
	d := debouncer{quiet: quietPeriod, max: maxDelay}
	defer d.stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-w.Events:
			if !ok {
				return errors.New("certs: the file watcher stopped")
			}
			d.event(time.Now())
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("certs: the file watcher stopped")
			}
			// Events may have been lost (fsnotify.ErrEventOverflow).
			m.log.Warn("certs: watching the certificate files", "err", err)
			d.event(time.Now())
		case <-d.C():
			d.fired()
			changed, err := m.reload(false)
			switch {
			case err != nil:
				m.log.Error("certs: reloading changed certificates failed; keeping the previous ones", "err", err)
			case changed:
				m.log.Info("certs: reloaded changed certificates", "fingerprint", m.cur.Load().fingerprint)
			}
			// Link targets may have moved to other directories.
			m.syncWatches(w)
		}
	}
}

// syncWatches makes w watch exactly the directories of the pairs' files and
// link targets.
func (m *Manager) syncWatches(w *fsnotify.Watcher) {
	want := watchDirs(m.pairs)
	have := w.WatchList()
	var added []string
	for _, dir := range want {
		if slices.Contains(have, dir) {
			continue
		}
		if err := w.Add(dir); err != nil {
			m.log.Warn("certs: cannot watch for certificate changes", "dir", dir, "err", err)
			continue
		}
		added = append(added, dir)
	}
	for _, dir := range have {
		if !slices.Contains(want, dir) {
			_ = w.Remove(dir) // it may be gone already
		}
	}
	if len(added) > 0 {
		m.log.Info("certs: watching for certificate changes", "dirs", added)
	}
}

// watchDirs returns the directories whose changes can change the pairs:
// each file's, and each symbolic link target's along the way, so that
// rename-and-replace, Kubernetes' "..data" swaps and certbot's
// live-to-archive links are all seen. Directories are resolved to their
// real paths when they exist.
func watchDirs(pairs []Pair) []string {
	var dirs []string
	add := func(dir string) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			dir = real
		}
		if !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	for _, p := range pairs {
		for _, name := range [2]string{p.CertFile, p.KeyFile} {
			for range maxLinks {
				add(filepath.Dir(name))
				target, err := os.Readlink(name)
				if err != nil {
					break
				}
				if !filepath.IsAbs(target) {
					target = filepath.Join(filepath.Dir(name), target)
				}
				name = target
			}
		}
	}
	return dirs
}

// debouncer fires once events have stopped for quiet, or max after the
// first event of a burst, whichever is sooner.
type debouncer struct {
	quiet, max time.Duration
	timer      *time.Timer
	first      time.Time // of the pending burst; zero when none is pending
}

// event records an event at now.
func (d *debouncer) event(now time.Time) {
	if d.first.IsZero() {
		d.first = now
	}
	wait := min(d.quiet, d.first.Add(d.max).Sub(now))
	if d.timer == nil {
		d.timer = time.NewTimer(wait)
	} else {
		d.timer.Reset(wait)
	}
}

// C returns the channel that fires for the pending burst, or nil.
func (d *debouncer) C() <-chan time.Time {
	if d.first.IsZero() {
		return nil
	}
	return d.timer.C
}

// fired ends the pending burst; call it after receiving from C.
func (d *debouncer) fired() { d.first = time.Time{} }

// stop releases the timer.
func (d *debouncer) stop() {
	if d.timer != nil {
		d.timer.Stop()
	}
}
