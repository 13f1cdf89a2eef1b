package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
)

// watch opens the announcements of the view, closed at the end of the test.
func watch(t *testing.T, c *OriginConsumer) *Announcements {
	t.Helper()
	a := c.Announcements()
	t.Cleanup(a.Close)
	return a
}

// consumeOnly returns c.ConsumeOnly(prefixes...), failing when it is refused.
func consumeOnly(t *testing.T, c *OriginConsumer, prefixes ...Path) *OriginConsumer {
	t.Helper()
	v, err := c.ConsumeOnly(prefixes...)
	noErr(t, fmt.Sprintf("ConsumeOnly(%q)", prefixes), err)
	return v
}

// viewRoot returns c.WithRoot(prefix), failing when it is refused.
func viewRoot(t *testing.T, c *OriginConsumer, prefix Path) *OriginConsumer {
	t.Helper()
	v, err := c.WithRoot(prefix)
	noErr(t, fmt.Sprintf("OriginConsumer.WithRoot(%q)", prefix), err)
	return v
}

// publishOnly returns o.PublishOnly(prefixes...), failing when it is refused.
func publishOnly(t *testing.T, o *OriginProducer, prefixes ...Path) *OriginProducer {
	t.Helper()
	p, err := o.PublishOnly(prefixes...)
	noErr(t, fmt.Sprintf("PublishOnly(%q)", prefixes), err)
	return p
}

// withRoot returns o.WithRoot(prefix), failing when it is refused.
func withRoot(t *testing.T, o *OriginProducer, prefix Path) *OriginProducer {
	t.Helper()
	p, err := o.WithRoot(prefix)
	noErr(t, fmt.Sprintf("OriginProducer.WithRoot(%q)", prefix), err)
	return p
}

// createBroadcast returns o.CreateBroadcast(path), closed at the end of the
// test.
func createBroadcast(t *testing.T, o *OriginProducer, path Path) *BroadcastProducer {
	t.Helper()
	b, err := o.CreateBroadcast(path)
	noErr(t, fmt.Sprintf("CreateBroadcast(%q)", path), err)
	t.Cleanup(b.Close)
	return b
}

// unauthorized fails unless a scope operation was refused: no result and
// ErrUnauthorized.
func unauthorized[T any](t *testing.T, what string, got *T, err error) {
	t.Helper()
	if got != nil || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("%s = %v, %v; want nil, ErrUnauthorized", what, got, err)
	}
}

func broadcasts(t *testing.T, n int) []*BroadcastProducer {
	t.Helper()
	bs := make([]*BroadcastProducer, n)
	for i := range bs {
		bs[i] = newTestBroadcast(t)
	}
	return bs
}

// announcedNow returns the next announcement, failing if it would block.
func announcedNow(t *testing.T, a *Announcements) Announce {
	t.Helper()
	an, err := a.Next(doneCtx)
	noErr(t, "Next", err)
	return an
}

// wantAnnounce fails unless the next announcement is b at path.
func wantAnnounce(t *testing.T, a *Announcements, path Path, b *BroadcastProducer) {
	t.Helper()
	checkAnnounce(t, announcedNow(t, a), path, b)
}

// wantTryAnnounce is wantAnnounce through TryNext.
func wantTryAnnounce(t *testing.T, a *Announcements, path Path, b *BroadcastProducer) {
	t.Helper()
	an, ok := a.TryNext()
	if !ok {
		t.Fatal("TryNext: nothing queued")
	}
	checkAnnounce(t, an, path, b)
}

func checkAnnounce(t *testing.T, a Announce, path Path, b *BroadcastProducer) {
	t.Helper()
	if a.Path != path {
		t.Fatalf("announced %q, want %q", a.Path, path)
	}
	if a.Broadcast == nil {
		t.Fatalf("%q was unannounced, want an announcement", path)
	}
	if !a.Broadcast.SameBroadcast(b.Consume()) {
		t.Fatalf("%q announced another broadcast", path)
	}
}

// wantUnannounce fails unless the next announcement ends path.
func wantUnannounce(t *testing.T, a *Announcements, path Path) {
	t.Helper()
	an := announcedNow(t, a)
	if an.Path != path || an.Broadcast != nil {
		t.Fatalf("got %q (broadcast %v), want %q unannounced", an.Path, an.Broadcast != nil, path)
	}
}

// noAnnounce fails unless Next would block.
func noAnnounce(t *testing.T, a *Announcements) {
	t.Helper()
	if an, err := a.Next(doneCtx); !wouldBlock(err) {
		t.Fatalf("Next should block, got %q, %v", an.Path, err)
	}
}

func publish(t *testing.T, o *OriginProducer, path Path, b *BroadcastProducer) {
	t.Helper()
	if err := o.PublishBroadcast(path, b.Consume()); err != nil {
		t.Fatalf("PublishBroadcast(%q): %v", path, err)
	}
}

// broadcastLookup is what OriginProducer and OriginConsumer share.
type broadcastLookup interface {
	ConsumeBroadcast(path Path) (*BroadcastConsumer, error)
}

// activeAt returns the broadcast announced at path, failing when there is
// none.
func activeAt(t *testing.T, l broadcastLookup, path Path) *BroadcastConsumer {
	t.Helper()
	b, err := l.ConsumeBroadcast(path)
	noErr(t, fmt.Sprintf("ConsumeBroadcast(%q)", path), err)
	if b == nil {
		t.Fatalf("ConsumeBroadcast(%q) = nil without an error", path)
	}
	return b
}

// wantActive fails unless b is the broadcast announced at path.
func wantActive(t *testing.T, l broadcastLookup, path Path, b *BroadcastProducer) {
	t.Helper()
	if !activeAt(t, l, path).SameBroadcast(b.Consume()) {
		t.Fatalf("another broadcast is active at %q", path)
	}
}

// nothingAt fails unless ConsumeBroadcast finds nothing at path.
func nothingAt(t *testing.T, l broadcastLookup, path Path) {
	t.Helper()
	b, err := l.ConsumeBroadcast(path)
	if b != nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("ConsumeBroadcast(%q) = %v, %v; want ErrNotFound", path, b, err)
	}
}

func TestOriginAnnounce(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)

	c1 := watch(t, o.Consume())
	noAnnounce(t, c1)

	publish(t, o, "test1", bs[0])
	wantAnnounce(t, c1, "test1", bs[0])
	noAnnounce(t, c1)

	// A new queue gets what already exists, when it reads.
	c2 := watch(t, o.Consume())

	publish(t, o, "test2", bs[1])
	wantAnnounce(t, c1, "test2", bs[1])
	noAnnounce(t, c1)

	wantAnnounce(t, c2, "test1", bs[0])
	wantAnnounce(t, c2, "test2", bs[1])
	noAnnounce(t, c2)

	// Ending a broadcast unannounces it at once, with no background task.
	bs[0].Close()
	wantUnannounce(t, c1, "test1")
	wantUnannounce(t, c2, "test1")
	noAnnounce(t, c1)
	noAnnounce(t, c2)

	c3 := watch(t, o.Consume())
	wantAnnounce(t, c3, "test2", bs[1])
	noAnnounce(t, c3)

	bs[1].Close()
	for _, c := range []*Announcements{c1, c2, c3} {
		wantUnannounce(t, c, "test2")
	}
}

func TestOriginDuplicate(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	view := o.Consume()
	c := watch(t, view)

	for _, b := range bs {
		publish(t, o, "test", b)
	}
	activeAt(t, view, "test")
	wantAnnounce(t, c, "test", bs[0])
	wantUnannounce(t, c, "test")
	wantAnnounce(t, c, "test", bs[1])
	wantUnannounce(t, c, "test")
	wantAnnounce(t, c, "test", bs[2])

	// Ending a backup changes nothing.
	bs[1].Close()
	wantActive(t, view, "test", bs[2])
	noAnnounce(t, c)

	// Ending the active one re-announces the newest backup.
	bs[2].Close()
	wantActive(t, view, "test", bs[0])
	wantUnannounce(t, c, "test")
	wantAnnounce(t, c, "test", bs[0])

	// Ending the last one unannounces.
	bs[0].Close()
	nothingAt(t, view, "test")
	wantUnannounce(t, c, "test")
	noAnnounce(t, c)
}

func TestOriginDuplicateReverse(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)
	publish(t, o, "test", bs[0])
	publish(t, o, "test", bs[1])
	wantActive(t, o, "test", bs[1])

	// The newer one ends first.
	bs[1].Close()
	wantActive(t, o, "test", bs[0])
	bs[0].Close()
	nothingAt(t, o, "test")
}

func TestOriginDoublePublish(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	publish(t, o, "test", b)
	publish(t, o, "test", b)
	wantActive(t, o, "test", b)
	b.Close()
	nothingAt(t, o, "test")
}

func TestOriginManyAnnouncementsQueued(t *testing.T) {
	const n = 256
	for _, try := range []bool{false, true} {
		t.Run(fmt.Sprintf("try=%v", try), func(t *testing.T) {
			o := NewOrigin()
			b := newTestBroadcast(t)
			c := watch(t, o.Consume())
			for i := range n {
				publish(t, o, NewPath(fmt.Sprintf("test%d", i)), b)
			}
			for i := range n {
				path := NewPath(fmt.Sprintf("test%d", i))
				if try {
					wantTryAnnounce(t, c, path, b)
				} else {
					wantAnnounce(t, c, path, b)
				}
			}
			noAnnounce(t, c)
		})
	}
}

func TestOriginWithRootBasic(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	foo := withRoot(t, o, "foo")
	if foo.Root() != "foo" {
		t.Fatalf("WithRoot(foo).Root() = %q", foo.Root())
	}
	c := watch(t, o.Consume())

	publish(t, foo, "bar/baz", b)
	wantAnnounce(t, c, "foo/bar/baz", b)

	fooC := watch(t, foo.Consume())
	wantAnnounce(t, fooC, "bar/baz", b)
}

func TestOriginWithRootNested(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	fooBar := withRoot(t, withRoot(t, o, "foo"), "bar")
	if fooBar.Root() != "foo/bar" {
		t.Fatalf("Root = %q", fooBar.Root())
	}
	c := watch(t, o.Consume())

	publish(t, fooBar, "baz", b)
	wantAnnounce(t, c, "foo/bar/baz", b)
	wantAnnounce(t, watch(t, fooBar.Consume()), "baz", b)
}

func TestOriginPublishOnlyAllows(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	limited := publishOnly(t, o, "allowed/path1", "allowed/path2")
	tests := []struct {
		path Path
		ok   bool
	}{
		{"allowed/path1", true},
		{"allowed/path1/nested", true},
		{"allowed/path2", true},
		{"notallowed", false},
		{"allowed", false}, // parent of an allowed path
		{"other/path", false},
		{"allowed/path10", false}, // not on a segment boundary
	}
	for _, tt := range tests {
		err := limited.PublishBroadcast(tt.path, b.Consume())
		if got := err == nil; got != tt.ok {
			t.Errorf("PublishBroadcast(%q) = %v, want allowed %v", tt.path, err, tt.ok)
		}
		if !tt.ok && !errors.Is(err, ErrUnauthorized) {
			t.Errorf("PublishBroadcast(%q) = %v, want ErrUnauthorized", tt.path, err)
		}
	}
}

func TestOriginPublishOnlyEmpty(t *testing.T) {
	p, err := NewOrigin().PublishOnly()
	unauthorized(t, "PublishOnly() with no prefix", p, err)
	c, err := NewOrigin().Consume().ConsumeOnly()
	unauthorized(t, "ConsumeOnly() with no prefix", c, err)
}

func TestOriginConsumeOnlyFilters(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	c := watch(t, o.Consume())

	publish(t, o, "allowed", bs[0])
	publish(t, o, "allowed/nested", bs[1])
	publish(t, o, "notallowed", bs[2])

	limited := watch(t, consumeOnly(t, o.Consume(), "allowed"))
	wantAnnounce(t, limited, "allowed", bs[0])
	wantAnnounce(t, limited, "allowed/nested", bs[1])
	noAnnounce(t, limited)

	wantAnnounce(t, c, "allowed", bs[0])
	wantAnnounce(t, c, "allowed/nested", bs[1])
	wantAnnounce(t, c, "notallowed", bs[2])
}

func TestOriginConsumeOnlyMultiplePrefixes(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	publish(t, o, "foo/test", bs[0])
	publish(t, o, "bar/test", bs[1])
	publish(t, o, "baz/test", bs[2])

	limited := watch(t, consumeOnly(t, o.Consume(), "foo", "bar"))
	// Prefixes are visited in canonical order: length, then bytes.
	wantAnnounce(t, limited, "bar/test", bs[1])
	wantAnnounce(t, limited, "foo/test", bs[0])
	noAnnounce(t, limited)
}

func TestOriginWithRootAndPublishOnly(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	limited := publishOnly(t, withRoot(t, o, "foo"), "bar", "goop/pee")
	c := watch(t, o.Consume())

	for _, p := range []Path{"bar", "bar/nested", "goop/pee", "goop/pee/nested"} {
		publish(t, limited, p, b)
	}
	for _, p := range []Path{"baz", "goop", "goop/other"} {
		if err := limited.PublishBroadcast(p, b.Consume()); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("PublishBroadcast(%q) = %v, want ErrUnauthorized", p, err)
		}
	}
	for _, p := range []Path{"foo/bar", "foo/bar/nested", "foo/goop/pee", "foo/goop/pee/nested"} {
		wantAnnounce(t, c, p, b)
	}
}

func TestOriginWithRootAndConsumeOnly(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	publish(t, o, "foo/bar/test", bs[0])
	publish(t, o, "foo/goop/pee/test", bs[1])
	publish(t, o, "foo/other/test", bs[2])

	limited := watch(t, consumeOnly(t, withRoot(t, o, "foo").Consume(), "bar", "goop/pee"))
	wantAnnounce(t, limited, "bar/test", bs[0])
	wantAnnounce(t, limited, "goop/pee/test", bs[1])
	noAnnounce(t, limited)
}

func TestOriginWithRootUnauthorized(t *testing.T) {
	limited := publishOnly(t, NewOrigin(), "allowed")
	outside, err := limited.WithRoot("notallowed")
	unauthorized(t, "WithRoot outside the allowed prefixes", outside, err)
	root := withRoot(t, limited, "allowed")
	if root.Root() != "allowed" {
		t.Fatalf("WithRoot(allowed).Root() = %q", root.Root())
	}
	if got := root.Allowed(); len(got) != 1 || got[0] != "" {
		t.Fatalf("Allowed = %q, want everything below the root", got)
	}
}

func TestOriginWildcardPermission(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	publish(t, o, "any/path", b)
	publish(t, o, "other/path", b)
	if foo := withRoot(t, o, "foo"); foo.Root() != "foo" {
		t.Fatalf("WithRoot on the unrestricted producer: Root = %q", foo.Root())
	}
}

func TestOriginConsumeBroadcastWithPermissions(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)
	publish(t, o, "allowed/test", bs[0])
	publish(t, o, "notallowed/test", bs[1])

	limited := consumeOnly(t, o.Consume(), "allowed")
	wantActive(t, limited, "allowed/test", bs[0])
	got, err := limited.ConsumeBroadcast("notallowed/test")
	unauthorized(t, "ConsumeBroadcast outside the scope", got, err)
	c := o.Consume()
	wantActive(t, c, "allowed/test", bs[0])
	wantActive(t, c, "notallowed/test", bs[1])
}

func TestOriginNestedPathsWithPermissions(t *testing.T) {
	limited := publishOnly(t, NewOrigin(), "a/b/c")
	b := newTestBroadcast(t)
	for _, p := range []Path{"a/b/c", "a/b/c/d", "a/b/c/d/e"} {
		publish(t, limited, p, b)
	}
	for _, p := range []Path{"a", "a/b", "a/b/other"} {
		if err := limited.PublishBroadcast(p, b.Consume()); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("PublishBroadcast(%q) = %v, want ErrUnauthorized", p, err)
		}
	}
}

func TestOriginMultipleConsumersWithDifferentPermissions(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	publish(t, o, "foo/test", bs[0])
	publish(t, o, "bar/test", bs[1])
	publish(t, o, "baz/test", bs[2])

	foo := watch(t, consumeOnly(t, o.Consume(), "foo"))
	bar := watch(t, consumeOnly(t, o.Consume(), "bar"))
	foobar := watch(t, consumeOnly(t, o.Consume(), "foo", "bar"))

	wantAnnounce(t, foo, "foo/test", bs[0])
	noAnnounce(t, foo)
	wantAnnounce(t, bar, "bar/test", bs[1])
	noAnnounce(t, bar)
	wantAnnounce(t, foobar, "bar/test", bs[1])
	wantAnnounce(t, foobar, "foo/test", bs[0])
	noAnnounce(t, foobar)
}

// drainPaths reads every queued announcement and returns the paths, sorted.
func drainPaths(t *testing.T, c *Announcements, n int) []string {
	t.Helper()
	var paths []string
	for range n {
		a, ok := c.TryNext()
		if !ok {
			t.Fatalf("only %d announcements, want %d", len(paths), n)
		}
		paths = append(paths, a.Path.String())
	}
	noAnnounce(t, c)
	slices.Sort(paths)
	return paths
}

func TestOriginSelectWithEmptyPrefix(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)
	limited := publishOnly(t, withRoot(t, o, "demo"), "worm-node", "foobar")
	publish(t, limited, "worm-node/test", bs[0])
	publish(t, limited, "foobar/test", bs[1])

	// The empty prefix keeps exactly the allowed prefixes.
	c := watch(t, consumeOnly(t, limited.Consume(), ""))
	got := drainPaths(t, c, 2)
	if fmt.Sprint(got) != "[foobar/test worm-node/test]" {
		t.Fatalf("paths = %q", got)
	}
}

func TestOriginSelectNarrowingScope(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	limited := publishOnly(t, withRoot(t, o, "demo"), "worm-node", "foobar")
	publish(t, limited, "worm-node", bs[0])
	publish(t, limited, "worm-node/foo", bs[1])
	publish(t, limited, "foobar/bar", bs[2])

	worm := watch(t, consumeOnly(t, limited.Consume(), "worm-node"))
	wantAnnounce(t, worm, "worm-node", bs[0])
	wantAnnounce(t, worm, "worm-node/foo", bs[1])
	noAnnounce(t, worm)

	foo := watch(t, consumeOnly(t, limited.Consume(), "worm-node/foo"))
	wantAnnounce(t, foo, "worm-node/foo", bs[1])
	noAnnounce(t, foo)
}

func TestOriginSelectMultipleRootsWithEmptyPrefix(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	limited := publishOnly(t, o, "app1", "app2", "shared")
	publish(t, limited, "app1/data", bs[0])
	publish(t, limited, "app2/config", bs[1])
	publish(t, limited, "shared/resource", bs[2])

	c := watch(t, consumeOnly(t, limited.Consume(), ""))
	wantAnnounce(t, c, "app1/data", bs[0])
	wantAnnounce(t, c, "app2/config", bs[1])
	wantAnnounce(t, c, "shared/resource", bs[2])
	noAnnounce(t, c)
}

func TestOriginPublishOnlyWithEmptyPrefix(t *testing.T) {
	b := newTestBroadcast(t)
	same := publishOnly(t, publishOnly(t, NewOrigin(), "services/api", "services/web"), "")
	for p, ok := range map[Path]bool{"services/api": true, "services/web": true, "services/db": false, "other": false} {
		err := same.PublishBroadcast(p, b.Consume())
		if got := err == nil; got != ok {
			t.Fatalf("PublishBroadcast(%q) = %v, want allowed %v", p, err, ok)
		}
	}
}

func TestOriginSelectNarrowingToDeeperPath(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	limited := publishOnly(t, o, "org")
	publish(t, limited, "org/team1/project1", bs[0])
	publish(t, limited, "org/team1/project2", bs[1])
	publish(t, limited, "org/team2/project1", bs[2])

	team2 := watch(t, consumeOnly(t, limited.Consume(), "org/team2"))
	wantAnnounce(t, team2, "org/team2/project1", bs[2])
	noAnnounce(t, team2)

	project1 := watch(t, consumeOnly(t, limited.Consume(), "org/team1/project1"))
	wantAnnounce(t, project1, "org/team1/project1", bs[0])
	noAnnounce(t, project1)
}

func TestOriginSelectWithNonMatchingPrefix(t *testing.T) {
	limited := publishOnly(t, NewOrigin(), "allowed/path")
	c, err := limited.Consume().ConsumeOnly("different/path")
	unauthorized(t, "ConsumeOnly outside the scope", c, err)
	p, err := limited.PublishOnly("other/path")
	unauthorized(t, "PublishOnly outside the scope", p, err)
}

func TestOriginWithRootTrailingSlashConsumer(t *testing.T) {
	o := NewOrigin()
	c := watch(t, viewRoot(t, o.Consume(), Path("some_prefix/")))
	b := createBroadcast(t, o, "some_prefix/test")
	wantAnnounce(t, c, "test", b)
}

func TestOriginWithRootTrailingSlashProducer(t *testing.T) {
	rooted := withRoot(t, NewOrigin(), Path("some_prefix/"))
	if rooted.Root() != "some_prefix" {
		t.Fatalf("Root = %q", rooted.Root())
	}
	b := createBroadcast(t, rooted, "test")
	wantAnnounce(t, watch(t, rooted.Consume()), "test", b)
}

func TestOriginWithRootTrailingSlashUnannounce(t *testing.T) {
	o := NewOrigin()
	c := watch(t, viewRoot(t, o.Consume(), Path("some_prefix/")))
	b := createBroadcast(t, o, "some_prefix/test")
	wantAnnounce(t, c, "test", b)
	b.Close()
	wantUnannounce(t, c, "test")
}

func TestOriginSelectMaintainsAccessWithWiderPrefix(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)
	user := publishOnly(t, withRoot(t, o, "demo"), "worm-node", "foobar")
	publish(t, user, "worm-node/data", bs[0])
	publish(t, user, "foobar", bs[1])

	c := watch(t, consumeOnly(t, user.Consume(), ""))
	if got := drainPaths(t, c, 2); fmt.Sprint(got) != "[foobar worm-node/data]" {
		t.Fatalf("paths = %q", got)
	}

	narrow := watch(t, consumeOnly(t, user.Consume(), "worm-node"))
	wantAnnounce(t, narrow, "worm-node/data", bs[0])
	noAnnounce(t, narrow)
}

func TestOriginDuplicatePrefixesDeduped(t *testing.T) {
	b := newTestBroadcast(t)
	p := publishOnly(t, NewOrigin(), "demo", "demo")
	publish(t, p, "demo/stream", b)
	c := watch(t, p.Consume())
	wantAnnounce(t, c, "demo/stream", b)
	noAnnounce(t, c)
}

func TestOriginOverlappingPrefixesDeduped(t *testing.T) {
	b := newTestBroadcast(t)
	p := publishOnly(t, NewOrigin(), "demo", "demo/foo")
	publish(t, p, "demo/bar/stream", b) // "demo" covers everything below it
	c := watch(t, p.Consume())
	wantAnnounce(t, c, "demo/bar/stream", b)
	noAnnounce(t, c)
}

func TestOriginOverlappingPrefixesNoDuplicateAnnouncements(t *testing.T) {
	b := newTestBroadcast(t)
	p := publishOnly(t, NewOrigin(), "demo", "demo/foo")
	publish(t, p, "demo/foo/stream", b)
	c := watch(t, p.Consume())
	wantAnnounce(t, c, "demo/foo/stream", b) // once, not once per prefix
	noAnnounce(t, c)
}

func TestOriginAllowedReturnsDedupedPrefixes(t *testing.T) {
	p := publishOnly(t, NewOrigin(), "demo", "demo/foo", "anon")
	if got := p.Allowed(); fmt.Sprint(got) != "[anon demo]" {
		t.Fatalf("Allowed = %q, want [anon demo]", got)
	}
	if got := p.Consume().Allowed(); fmt.Sprint(got) != "[anon demo]" {
		t.Fatalf("the view's Allowed = %q, want [anon demo]", got)
	}
}

func TestOriginPrefixSegmentBoundary(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	c := watch(t, consumeOnly(t, o.Consume(), "foo"))
	publish(t, o, "foobar/x", b)
	publish(t, o, "foo/x", b)
	wantAnnounce(t, c, "foo/x", b)
	noAnnounce(t, c)
	nothingAt(t, o, "foo")
}

func TestOriginAbortUnannounces(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	c := watch(t, o.Consume())
	publish(t, o, "live", b)
	wantAnnounce(t, c, "live", b)
	noErr(t, "Abort", b.Abort(ErrTimeout))
	wantUnannounce(t, c, "live")
	nothingAt(t, o, "live")
}

func TestOriginPublishEndedBroadcast(t *testing.T) {
	o := NewOrigin()
	b := NewBroadcast()
	b.Close()
	c := watch(t, o.Consume())
	if err := o.PublishBroadcast("gone", b.Consume()); err != nil {
		t.Fatalf("PublishBroadcast refused an allowed path: %v", err)
	}
	noAnnounce(t, c)
	nothingAt(t, o, "gone")
	if err := o.PublishBroadcast("x", nil); err == nil {
		t.Fatal("PublishBroadcast accepted nil")
	}
	noAnnounce(t, c)
}

func TestOriginCreateBroadcastRefused(t *testing.T) {
	b, err := publishOnly(t, NewOrigin(), "a").CreateBroadcast("b")
	unauthorized(t, "CreateBroadcast outside the scope", b, err)
}

func TestAnnouncementsClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := NewOrigin()
		b := newTestBroadcast(t)
		publish(t, o, "queued", b)
		c := o.Consume().Announcements()
		errc := make(chan error)
		go func() {
			_, err := c.Next(context.Background())
			if err == nil { // the queued announcement
				_, err = c.Next(context.Background())
			}
			errc <- err
		}()
		synctest.Wait()
		c.Close()
		c.Close() // idempotent
		if err := <-errc; err != io.EOF {
			t.Fatalf("Next = %v, want io.EOF after Close", err)
		}
		// Later changes are not queued: Next keeps reporting the end.
		publish(t, o, "later", b)
		if a, err := c.Next(doneCtx); err != io.EOF {
			t.Fatalf("Next = %+v, %v after Close, want io.EOF", a, err)
		}
		if _, ok := c.TryNext(); ok {
			t.Fatal("TryNext after Close")
		}
	})
}

func TestAnnouncementsCloseDropsPending(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	c := o.Consume().Announcements()
	publish(t, o, "a", b)
	publish(t, o, "b", b)
	c.Close()
	if a, err := c.Next(doneCtx); err != io.EOF {
		t.Fatalf("Next = %+v, %v; want io.EOF, the pending announcements dropped", a, err)
	}
}

func TestAnnouncementsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := NewOrigin()
		c := watch(t, o.Consume())
		got := make(chan Announce)
		go func() {
			a, err := c.Next(context.Background())
			if err != nil {
				t.Error(err)
			}
			got <- a
		}()
		synctest.Wait()
		b := newTestBroadcast(t)
		publish(t, o, "x", b)
		checkAnnounce(t, <-got, "x", b)
	})
}

// originNodes counts the nodes of the tree, the root included.
func originNodes(o *OriginProducer) int {
	or := o.scope.o
	or.mu.Lock()
	defer or.mu.Unlock()
	var count func(n *originNode) int
	count = func(n *originNode) int {
		c := 1
		for _, child := range n.children {
			c += count(child)
		}
		return c
	}
	return count(or.root)
}

func TestOriginPrunesEmptyNodes(t *testing.T) {
	o := NewOrigin()
	view := consumeOnly(t, o.Consume(), "a/b")
	if n := originNodes(o); n != 1 {
		t.Fatalf("nodes = %d with a view and no queue, want 1", n)
	}
	c := view.Announcements()
	b := newTestBroadcast(t)
	publish(t, o, "a/b/c/d", b)
	publish(t, o, "x/y", b)
	if n := originNodes(o); n != 7 {
		t.Fatalf("nodes = %d, want 7", n)
	}
	b.Close()
	if n := originNodes(o); n != 3 { // root, a, a/b (the queue's node)
		t.Fatalf("nodes = %d after unannounce, want 3", n)
	}
	c.Close()
	if n := originNodes(o); n != 1 {
		t.Fatalf("nodes = %d after close, want 1", n)
	}
}

func TestAnnouncementsGarbageCollected(t *testing.T) {
	o := NewOrigin()
	view := consumeOnly(t, o.Consume(), "leak")
	func() { _ = view.Announcements() }()
	eventually(t, func(ctx context.Context) bool { return originNodes(o) == 1 })
}

func TestOriginConcurrent(t *testing.T) {
	const (
		publishers = 8
		perPub     = 25
		consumers  = 8
	)
	o := NewOrigin()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Consumers track the set of live paths from the announcements.
	var cwg sync.WaitGroup
	finals := make([]map[Path]bool, consumers)
	for i := range consumers {
		c := watch(t, o.Consume())
		cwg.Go(func() {
			live := map[Path]bool{}
			for {
				a, err := c.Next(ctx)
				if err != nil {
					finals[i] = live
					return
				}
				if a.Broadcast == nil {
					delete(live, a.Path)
				} else {
					live[a.Path] = true
				}
			}
		})
	}

	var pwg sync.WaitGroup
	for p := range publishers {
		pwg.Go(func() {
			for i := range perPub {
				path := NewPath(fmt.Sprint(p), fmt.Sprint(i%5))
				b, err := o.CreateBroadcast(path)
				if err != nil {
					t.Errorf("CreateBroadcast(%q): %v", path, err)
					return
				}
				if i%3 == 0 {
					b.Close() // ends at once
				} else {
					t.Cleanup(b.Close) // stays until the end of the test
				}
			}
		})
	}
	pwg.Wait()

	// Every consumer must converge on what the origin has now: Next drains
	// the queue before it reports the cancelled context.
	want := map[Path]bool{}
	check := watch(t, o.Consume())
	for {
		a, ok := check.TryNext()
		if !ok {
			break
		}
		want[a.Path] = true
	}
	cancel()
	cwg.Wait()
	for i, live := range finals {
		if fmt.Sprint(live) != fmt.Sprint(want) {
			t.Fatalf("consumer %d ended with %v, want %v", i, live, want)
		}
	}
}

func TestOriginConsumerScoping(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)
	publish(t, o, "room/a/cam", bs[0])
	publish(t, o, "lobby/b", bs[1])

	all := o.Consume()
	room := viewRoot(t, all, "room")
	if room.Root() != "room" || fmt.Sprint(room.Allowed()) != "[]" || len(room.Allowed()) != 1 {
		t.Fatalf("Root %q Allowed %q", room.Root(), room.Allowed())
	}
	roomQ := watch(t, room)
	wantAnnounce(t, roomQ, "a/cam", bs[0])
	noAnnounce(t, roomQ)
	wantActive(t, room, "a/cam", bs[0]) // relative to the root

	onlyA := consumeOnly(t, room, "a")
	if fmt.Sprint(onlyA.Allowed()) != "[a]" {
		t.Fatalf("Allowed = %q", onlyA.Allowed())
	}
	wantAnnounce(t, watch(t, onlyA), "a/cam", bs[0])
	outside, err := onlyA.ConsumeOnly("b")
	unauthorized(t, "ConsumeOnly outside the scope", outside, err)
	outside, err = onlyA.WithRoot("b")
	unauthorized(t, "WithRoot outside the scope", outside, err)
	deeper := viewRoot(t, onlyA, "a")
	if deeper.Root() != "room/a" {
		t.Fatalf("Root = %q", deeper.Root())
	}
	wantAnnounce(t, watch(t, deeper), "cam", bs[0])
}

// liveHeap returns the bytes of live heap objects, collecting garbage until
// the figure settles (cleanups queued by one collection run after it).
func liveHeap() uint64 {
	var m runtime.MemStats
	prev := uint64(math.MaxUint64)
	for range 10 {
		runtime.GC()
		runtime.ReadMemStats(&m)
		if m.HeapAlloc >= prev {
			break
		}
		prev = m.HeapAlloc
	}
	return m.HeapAlloc
}

// An OriginConsumer is a view: it holds no queue, so publishing and
// unpublishing through an origin that has one retains nothing, while an
// Announcements that nobody reads keeps every change.
func TestOriginViewHoldsNoQueue(t *testing.T) {
	const (
		cycles = 10_000
		limit  = 1 << 20
	)
	tests := []struct {
		name       string
		unreadOpen bool // an Announcements left open and never read
	}{
		{"view only", false},
		{"unread announcements", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOrigin()
			view := viewRoot(t, o.Consume(), "room")
			var unread *Announcements
			if tt.unreadOpen {
				unread = view.Announcements()
				defer unread.Close()
			}
			before := liveHeap()
			for i := range cycles {
				b, err := o.CreateBroadcast(NewPath("room", strconv.Itoa(i)))
				noErr(t, "CreateBroadcast", err)
				b.Close()
			}
			after := liveHeap()
			runtime.KeepAlive(view)
			growth := int64(after) - int64(before)
			t.Logf("live heap grew by %d bytes over %d cycles", growth, cycles)

			if !tt.unreadOpen {
				if growth >= limit {
					t.Fatalf("live heap grew by %d bytes with only a view open, want < %d", growth, limit)
				}
				if n := originNodes(o); n != 1 {
					t.Fatalf("nodes = %d, want 1", n)
				}
				// The view still works: a queue opened now starts empty.
				noAnnounce(t, watch(t, view))
				return
			}
			if growth <= limit {
				t.Fatalf("live heap grew by only %d bytes with an unread queue, want > %d: the test cannot tell a queue from none", growth, limit)
			}
			n := 0
			for {
				if _, ok := unread.TryNext(); !ok {
					break
				}
				n++
			}
			if n != 2*cycles {
				t.Fatalf("the unread queue held %d announcements, want %d", n, 2*cycles)
			}
		})
	}
}

// TestOriginScopeErrors runs every scope operation of a producer limited to
// "app/live" under the root "org", and of its view, inside and outside what
// they allow.
func TestOriginScopeErrors(t *testing.T) {
	o := NewOrigin()
	scoped := publishOnly(t, withRoot(t, o, "org"), "app/live")
	view := scoped.Consume()
	b := newTestBroadcast(t)
	publish(t, scoped, "app/live/cam", b)

	tests := []struct {
		name string
		op   func() error
		want error // nil: allowed
	}{
		{"PublishBroadcast inside", func() error { return scoped.PublishBroadcast("app/live/mic", b.Consume()) }, nil},
		{"PublishBroadcast outside", func() error { return scoped.PublishBroadcast("app/vod", b.Consume()) }, ErrUnauthorized},
		{"PublishBroadcast at a parent", func() error { return scoped.PublishBroadcast("app", b.Consume()) }, ErrUnauthorized},
		{"CreateBroadcast outside", func() error {
			p, err := scoped.CreateBroadcast("other")
			if p != nil {
				p.Close()
				return errors.New("returned a producer")
			}
			return err
		}, ErrUnauthorized},
		{"producer ConsumeBroadcast", func() error { _, err := scoped.ConsumeBroadcast("app/live/cam"); return err }, nil},
		{"producer ConsumeBroadcast nothing there", func() error { _, err := scoped.ConsumeBroadcast("app/live/none"); return err }, ErrNotFound},
		{"producer ConsumeBroadcast outside", func() error { _, err := scoped.ConsumeBroadcast("app/vod"); return err }, ErrUnauthorized},
		{"view ConsumeBroadcast", func() error { _, err := view.ConsumeBroadcast("app/live/cam"); return err }, nil},
		{"view ConsumeBroadcast nothing there", func() error { _, err := view.ConsumeBroadcast("app/live"); return err }, ErrNotFound},
		{"view ConsumeBroadcast outside", func() error { _, err := view.ConsumeBroadcast("org/app/live/cam"); return err }, ErrUnauthorized},
		{"PublishOnly narrower", func() error { _, err := scoped.PublishOnly("app/live/cam"); return err }, nil},
		{"PublishOnly wider keeps the scope", func() error { _, err := scoped.PublishOnly("app"); return err }, nil},
		{"PublishOnly outside", func() error { _, err := scoped.PublishOnly("app/vod"); return err }, ErrUnauthorized},
		{"PublishOnly nothing", func() error { _, err := scoped.PublishOnly(); return err }, ErrUnauthorized},
		{"producer WithRoot inside", func() error { _, err := scoped.WithRoot("app/live/cam"); return err }, nil},
		{"producer WithRoot above", func() error { _, err := scoped.WithRoot("app"); return err }, nil},
		{"producer WithRoot outside", func() error { _, err := scoped.WithRoot("app/vod"); return err }, ErrUnauthorized},
		{"ConsumeOnly narrower", func() error { _, err := view.ConsumeOnly("app/live/cam"); return err }, nil},
		{"ConsumeOnly outside", func() error { _, err := view.ConsumeOnly("app/vod"); return err }, ErrUnauthorized},
		{"ConsumeOnly nothing", func() error { _, err := view.ConsumeOnly(); return err }, ErrUnauthorized},
		{"view WithRoot inside", func() error { _, err := view.WithRoot("app/live"); return err }, nil},
		{"view WithRoot outside", func() error { _, err := view.WithRoot("elsewhere"); return err }, ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if tt.want == nil {
				noErr(t, tt.name, err)
				return
			}
			isErr(t, tt.name, err, tt.want)
			for _, other := range []error{ErrUnauthorized, ErrNotFound} {
				if other != tt.want && errors.Is(err, other) {
					t.Fatalf("%v also matches %v", err, other)
				}
			}
		})
	}
	// Nothing refused was announced.
	c := watch(t, o.Consume())
	wantAnnounce(t, c, "org/app/live/cam", b)
	wantAnnounce(t, c, "org/app/live/mic", b)
	noAnnounce(t, c)
}

func TestOriginPublishNil(t *testing.T) {
	o := NewOrigin()
	err := o.PublishBroadcast("x", nil)
	if err == nil {
		t.Fatal("PublishBroadcast accepted a nil broadcast")
	}
	nothingAt(t, o, "x")
	if n := originNodes(o); n != 1 {
		t.Fatalf("nodes = %d after a refused publish, want 1", n)
	}
}

// A view is not a snapshot: it sees what is published after it was made.
func TestOriginViewIsLive(t *testing.T) {
	o := NewOrigin()
	view := consumeOnly(t, viewRoot(t, o.Consume(), "room"), "a")
	nothingAt(t, view, "a/cam")
	b := createBroadcast(t, o, "room/a/cam")
	wantActive(t, view, "a/cam", b)
	wantAnnounce(t, watch(t, view), "a/cam", b)
	b.Close()
	nothingAt(t, view, "a/cam")
	noAnnounce(t, watch(t, view))
}

// collectAnnounces ranges over a.All(ctx) to the end, without breaking,
// and returns the paths (suffixed with "-" when unannounced) and the
// errors it yielded.
func collectAnnounces(ctx context.Context, a *Announcements) (paths []string, errs []error) {
	for an, err := range a.All(ctx) {
		if err != nil {
			errs = append(errs, err)
			if len(errs) > 1 {
				break // it should have stopped by itself: fail, not spin
			}
			continue // the iterator must stop by itself
		}
		p := an.Path.String()
		if an.Broadcast == nil {
			p += "-"
		}
		paths = append(paths, p)
	}
	return paths, errs
}

func TestAnnouncementsAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := NewOrigin()
		x := createBroadcast(t, o, "x")
		a := o.Consume().Announcements()
		type result struct {
			paths []string
			errs  []error
		}
		done := make(chan result)
		go func() {
			paths, errs := collectAnnounces(context.Background(), a)
			done <- result{paths, errs}
		}()
		synctest.Wait() // x read; waiting for the next
		createBroadcast(t, o, "y")
		x.Close()
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("All ended before Close: %v", r)
		default:
		}
		// Close ends the iteration cleanly: io.EOF is not yielded.
		a.Close()
		r := <-done
		if fmt.Sprint(r.paths) != "[x y x-]" || len(r.errs) != 0 {
			t.Fatalf("All yielded %v, errors %v; want [x y x-] and no error", r.paths, r.errs)
		}
	})
}

func TestAnnouncementsAllContext(t *testing.T) {
	o := NewOrigin()
	createBroadcast(t, o, "x")
	createBroadcast(t, o, "y")
	a := watch(t, o.Consume())
	// doneCtx: what is queued is yielded, then the context error, once.
	paths, errs := collectAnnounces(doneCtx, a)
	if fmt.Sprint(paths) != "[x y]" || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("All yielded %v, errors %v; want [x y] then context.Canceled", paths, errs)
	}
	// The queue is still open.
	createBroadcast(t, o, "z")
	if an := announcedNow(t, a); an.Path != "z" {
		t.Fatalf("next %q, want z", an.Path)
	}
}

func TestAnnouncementsAllBreak(t *testing.T) {
	o := NewOrigin()
	bs := []*BroadcastProducer{createBroadcast(t, o, "x"), createBroadcast(t, o, "y")}
	a := watch(t, o.Consume())
	for an, err := range a.All(doneCtx) {
		noErr(t, "All", err)
		checkAnnounce(t, an, "x", bs[0])
		break
	}
	// Breaking consumed only the announcement yielded.
	wantTryAnnounce(t, a, "y", bs[1])
}
