package moq

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

func originConsumer(t *testing.T, c *OriginConsumer) *OriginConsumer {
	t.Helper()
	if c == nil {
		t.Fatal("no consumer: nothing allowed")
	}
	t.Cleanup(c.Close)
	return c
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
func announcedNow(t *testing.T, c *OriginConsumer) Announce {
	t.Helper()
	a, err := c.Announced(doneCtx)
	noErr(t, "Announced", err)
	return a
}

// wantAnnounce fails unless the next announcement is b at path.
func wantAnnounce(t *testing.T, c *OriginConsumer, path Path, b *BroadcastProducer) {
	t.Helper()
	checkAnnounce(t, announcedNow(t, c), path, b)
}

// wantTryAnnounce is wantAnnounce through TryAnnounced.
func wantTryAnnounce(t *testing.T, c *OriginConsumer, path Path, b *BroadcastProducer) {
	t.Helper()
	a, ok := c.TryAnnounced()
	if !ok {
		t.Fatal("TryAnnounced: nothing queued")
	}
	checkAnnounce(t, a, path, b)
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
func wantUnannounce(t *testing.T, c *OriginConsumer, path Path) {
	t.Helper()
	a := announcedNow(t, c)
	if a.Path != path || a.Broadcast != nil {
		t.Fatalf("got %q (broadcast %v), want %q unannounced", a.Path, a.Broadcast != nil, path)
	}
}

// noAnnounce fails unless Announced would block.
func noAnnounce(t *testing.T, c *OriginConsumer) {
	t.Helper()
	if a, err := c.Announced(doneCtx); !wouldBlock(err) {
		t.Fatalf("Announced should block, got %q, %v", a.Path, err)
	}
}

func publish(t *testing.T, o *OriginProducer, path Path, b *BroadcastProducer) {
	t.Helper()
	if !o.PublishBroadcast(path, b.Consume()) {
		t.Fatalf("PublishBroadcast(%q) not allowed", path)
	}
}

func TestOriginAnnounce(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)

	c1 := originConsumer(t, o.Consume())
	noAnnounce(t, c1)

	publish(t, o, "test1", bs[0])
	wantAnnounce(t, c1, "test1", bs[0])
	noAnnounce(t, c1)

	// A new consumer gets what already exists, when it reads.
	c2 := originConsumer(t, o.Consume())

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

	c3 := originConsumer(t, o.Consume())
	wantAnnounce(t, c3, "test2", bs[1])
	noAnnounce(t, c3)

	bs[1].Close()
	for _, c := range []*OriginConsumer{c1, c2, c3} {
		wantUnannounce(t, c, "test2")
	}
}

func TestOriginDuplicate(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	c := originConsumer(t, o.Consume())

	for _, b := range bs {
		publish(t, o, "test", b)
	}
	if c.ConsumeBroadcast("test") == nil {
		t.Fatal("ConsumeBroadcast = nil")
	}
	wantAnnounce(t, c, "test", bs[0])
	wantUnannounce(t, c, "test")
	wantAnnounce(t, c, "test", bs[1])
	wantUnannounce(t, c, "test")
	wantAnnounce(t, c, "test", bs[2])

	// Ending a backup changes nothing.
	bs[1].Close()
	if !c.ConsumeBroadcast("test").SameBroadcast(bs[2].Consume()) {
		t.Fatal("active broadcast changed")
	}
	noAnnounce(t, c)

	// Ending the active one re-announces the newest backup.
	bs[2].Close()
	if !c.ConsumeBroadcast("test").SameBroadcast(bs[0].Consume()) {
		t.Fatal("backup not active")
	}
	wantUnannounce(t, c, "test")
	wantAnnounce(t, c, "test", bs[0])

	// Ending the last one unannounces.
	bs[0].Close()
	if c.ConsumeBroadcast("test") != nil {
		t.Fatal("broadcast still announced")
	}
	wantUnannounce(t, c, "test")
	noAnnounce(t, c)
}

func TestOriginDuplicateReverse(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)
	publish(t, o, "test", bs[0])
	publish(t, o, "test", bs[1])
	if o.ConsumeBroadcast("test") == nil {
		t.Fatal("ConsumeBroadcast = nil")
	}

	// The newer one ends first.
	bs[1].Close()
	if !o.ConsumeBroadcast("test").SameBroadcast(bs[0].Consume()) {
		t.Fatal("older broadcast not restored")
	}
	bs[0].Close()
	if o.ConsumeBroadcast("test") != nil {
		t.Fatal("broadcast still announced")
	}
}

func TestOriginDoublePublish(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	publish(t, o, "test", b)
	publish(t, o, "test", b)
	if o.ConsumeBroadcast("test") == nil {
		t.Fatal("ConsumeBroadcast = nil")
	}
	b.Close()
	if o.ConsumeBroadcast("test") != nil {
		t.Fatal("broadcast still announced")
	}
}

func TestOriginManyAnnouncementsQueued(t *testing.T) {
	const n = 256
	for _, try := range []bool{false, true} {
		t.Run(fmt.Sprintf("try=%v", try), func(t *testing.T) {
			o := NewOrigin()
			b := newTestBroadcast(t)
			c := originConsumer(t, o.Consume())
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
	foo := o.WithRoot("foo")
	if foo == nil || foo.Root() != "foo" {
		t.Fatalf("WithRoot(foo) = %v", foo)
	}
	c := originConsumer(t, o.Consume())

	publish(t, foo, "bar/baz", b)
	wantAnnounce(t, c, "foo/bar/baz", b)

	fooC := originConsumer(t, foo.Consume())
	wantAnnounce(t, fooC, "bar/baz", b)
}

func TestOriginWithRootNested(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	fooBar := o.WithRoot("foo").WithRoot("bar")
	if fooBar.Root() != "foo/bar" {
		t.Fatalf("Root = %q", fooBar.Root())
	}
	c := originConsumer(t, o.Consume())

	publish(t, fooBar, "baz", b)
	wantAnnounce(t, c, "foo/bar/baz", b)
	wantAnnounce(t, originConsumer(t, fooBar.Consume()), "baz", b)
}

func TestOriginPublishOnlyAllows(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	limited := o.PublishOnly("allowed/path1", "allowed/path2")
	if limited == nil {
		t.Fatal("PublishOnly = nil")
	}
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
		if got := limited.PublishBroadcast(tt.path, b.Consume()); got != tt.ok {
			t.Errorf("PublishBroadcast(%q) = %v, want %v", tt.path, got, tt.ok)
		}
	}
}

func TestOriginPublishOnlyEmpty(t *testing.T) {
	if NewOrigin().PublishOnly() != nil {
		t.Fatal("PublishOnly() with no prefix should be nil")
	}
	if NewOrigin().ConsumeOnly() != nil {
		t.Fatal("ConsumeOnly() with no prefix should be nil")
	}
}

func TestOriginConsumeOnlyFilters(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	c := originConsumer(t, o.Consume())

	publish(t, o, "allowed", bs[0])
	publish(t, o, "allowed/nested", bs[1])
	publish(t, o, "notallowed", bs[2])

	limited := originConsumer(t, o.ConsumeOnly("allowed"))
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

	limited := originConsumer(t, o.ConsumeOnly("foo", "bar"))
	// Prefixes are visited in canonical order: length, then bytes.
	wantAnnounce(t, limited, "bar/test", bs[1])
	wantAnnounce(t, limited, "foo/test", bs[0])
	noAnnounce(t, limited)
}

func TestOriginWithRootAndPublishOnly(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	limited := o.WithRoot("foo").PublishOnly("bar", "goop/pee")
	if limited == nil {
		t.Fatal("PublishOnly = nil")
	}
	c := originConsumer(t, o.Consume())

	for _, p := range []Path{"bar", "bar/nested", "goop/pee", "goop/pee/nested"} {
		publish(t, limited, p, b)
	}
	for _, p := range []Path{"baz", "goop", "goop/other"} {
		if limited.PublishBroadcast(p, b.Consume()) {
			t.Fatalf("PublishBroadcast(%q) allowed", p)
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

	limited := originConsumer(t, o.WithRoot("foo").ConsumeOnly("bar", "goop/pee"))
	wantAnnounce(t, limited, "bar/test", bs[0])
	wantAnnounce(t, limited, "goop/pee/test", bs[1])
	noAnnounce(t, limited)
}

func TestOriginWithRootUnauthorized(t *testing.T) {
	limited := NewOrigin().PublishOnly("allowed")
	if limited.WithRoot("notallowed") != nil {
		t.Fatal("WithRoot outside the allowed prefixes")
	}
	root := limited.WithRoot("allowed")
	if root == nil || root.Root() != "allowed" {
		t.Fatalf("WithRoot(allowed) = %v", root)
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
	if foo := o.WithRoot("foo"); foo == nil || foo.Root() != "foo" {
		t.Fatal("WithRoot on the unrestricted producer failed")
	}
}

func TestOriginConsumeBroadcastWithPermissions(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)
	publish(t, o, "allowed/test", bs[0])
	publish(t, o, "notallowed/test", bs[1])

	limited := originConsumer(t, o.ConsumeOnly("allowed"))
	if got := limited.ConsumeBroadcast("allowed/test"); got == nil || !got.SameBroadcast(bs[0].Consume()) {
		t.Fatal("allowed broadcast not found")
	}
	if limited.ConsumeBroadcast("notallowed/test") != nil {
		t.Fatal("disallowed broadcast returned")
	}
	c := originConsumer(t, o.Consume())
	if c.ConsumeBroadcast("allowed/test") == nil || c.ConsumeBroadcast("notallowed/test") == nil {
		t.Fatal("unrestricted consumer misses a broadcast")
	}
}

func TestOriginNestedPathsWithPermissions(t *testing.T) {
	limited := NewOrigin().PublishOnly("a/b/c")
	b := newTestBroadcast(t)
	for _, p := range []Path{"a/b/c", "a/b/c/d", "a/b/c/d/e"} {
		publish(t, limited, p, b)
	}
	for _, p := range []Path{"a", "a/b", "a/b/other"} {
		if limited.PublishBroadcast(p, b.Consume()) {
			t.Fatalf("PublishBroadcast(%q) allowed", p)
		}
	}
}

func TestOriginMultipleConsumersWithDifferentPermissions(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	publish(t, o, "foo/test", bs[0])
	publish(t, o, "bar/test", bs[1])
	publish(t, o, "baz/test", bs[2])

	foo := originConsumer(t, o.ConsumeOnly("foo"))
	bar := originConsumer(t, o.ConsumeOnly("bar"))
	foobar := originConsumer(t, o.ConsumeOnly("foo", "bar"))

	wantAnnounce(t, foo, "foo/test", bs[0])
	noAnnounce(t, foo)
	wantAnnounce(t, bar, "bar/test", bs[1])
	noAnnounce(t, bar)
	wantAnnounce(t, foobar, "bar/test", bs[1])
	wantAnnounce(t, foobar, "foo/test", bs[0])
	noAnnounce(t, foobar)
}

// drainPaths reads every queued announcement and returns the paths, sorted.
func drainPaths(t *testing.T, c *OriginConsumer, n int) []string {
	t.Helper()
	var paths []string
	for range n {
		a, ok := c.TryAnnounced()
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
	limited := o.WithRoot("demo").PublishOnly("worm-node", "foobar")
	publish(t, limited, "worm-node/test", bs[0])
	publish(t, limited, "foobar/test", bs[1])

	// The empty prefix keeps exactly the allowed prefixes.
	c := originConsumer(t, limited.ConsumeOnly(""))
	got := drainPaths(t, c, 2)
	if fmt.Sprint(got) != "[foobar/test worm-node/test]" {
		t.Fatalf("paths = %q", got)
	}
}

func TestOriginSelectNarrowingScope(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	limited := o.WithRoot("demo").PublishOnly("worm-node", "foobar")
	publish(t, limited, "worm-node", bs[0])
	publish(t, limited, "worm-node/foo", bs[1])
	publish(t, limited, "foobar/bar", bs[2])

	worm := originConsumer(t, limited.ConsumeOnly("worm-node"))
	wantAnnounce(t, worm, "worm-node", bs[0])
	wantAnnounce(t, worm, "worm-node/foo", bs[1])
	noAnnounce(t, worm)

	foo := originConsumer(t, limited.ConsumeOnly("worm-node/foo"))
	wantAnnounce(t, foo, "worm-node/foo", bs[1])
	noAnnounce(t, foo)
}

func TestOriginSelectMultipleRootsWithEmptyPrefix(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	limited := o.PublishOnly("app1", "app2", "shared")
	publish(t, limited, "app1/data", bs[0])
	publish(t, limited, "app2/config", bs[1])
	publish(t, limited, "shared/resource", bs[2])

	c := originConsumer(t, limited.ConsumeOnly(""))
	wantAnnounce(t, c, "app1/data", bs[0])
	wantAnnounce(t, c, "app2/config", bs[1])
	wantAnnounce(t, c, "shared/resource", bs[2])
	noAnnounce(t, c)
}

func TestOriginPublishOnlyWithEmptyPrefix(t *testing.T) {
	b := newTestBroadcast(t)
	same := NewOrigin().PublishOnly("services/api", "services/web").PublishOnly("")
	if same == nil {
		t.Fatal("PublishOnly(\"\") = nil")
	}
	for p, ok := range map[Path]bool{"services/api": true, "services/web": true, "services/db": false, "other": false} {
		if got := same.PublishBroadcast(p, b.Consume()); got != ok {
			t.Fatalf("PublishBroadcast(%q) = %v, want %v", p, got, ok)
		}
	}
}

func TestOriginSelectNarrowingToDeeperPath(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 3)
	limited := o.PublishOnly("org")
	publish(t, limited, "org/team1/project1", bs[0])
	publish(t, limited, "org/team1/project2", bs[1])
	publish(t, limited, "org/team2/project1", bs[2])

	team2 := originConsumer(t, limited.ConsumeOnly("org/team2"))
	wantAnnounce(t, team2, "org/team2/project1", bs[2])
	noAnnounce(t, team2)

	project1 := originConsumer(t, limited.ConsumeOnly("org/team1/project1"))
	wantAnnounce(t, project1, "org/team1/project1", bs[0])
	noAnnounce(t, project1)
}

func TestOriginSelectWithNonMatchingPrefix(t *testing.T) {
	limited := NewOrigin().PublishOnly("allowed/path")
	if limited.ConsumeOnly("different/path") != nil {
		t.Fatal("ConsumeOnly outside the scope")
	}
	if limited.PublishOnly("other/path") != nil {
		t.Fatal("PublishOnly outside the scope")
	}
}

func TestOriginWithRootTrailingSlashConsumer(t *testing.T) {
	o := NewOrigin()
	c := originConsumer(t, o.Consume().WithRoot(Path("some_prefix/")))
	b, ok := o.CreateBroadcast("some_prefix/test")
	if !ok {
		t.Fatal("CreateBroadcast refused")
	}
	t.Cleanup(b.Close)
	wantAnnounce(t, c, "test", b)
}

func TestOriginWithRootTrailingSlashProducer(t *testing.T) {
	rooted := NewOrigin().WithRoot(Path("some_prefix/"))
	if rooted.Root() != "some_prefix" {
		t.Fatalf("Root = %q", rooted.Root())
	}
	b, ok := rooted.CreateBroadcast("test")
	if !ok {
		t.Fatal("CreateBroadcast refused")
	}
	t.Cleanup(b.Close)
	wantAnnounce(t, originConsumer(t, rooted.Consume()), "test", b)
}

func TestOriginWithRootTrailingSlashUnannounce(t *testing.T) {
	o := NewOrigin()
	c := originConsumer(t, o.Consume().WithRoot(Path("some_prefix/")))
	b, ok := o.CreateBroadcast("some_prefix/test")
	if !ok {
		t.Fatal("CreateBroadcast refused")
	}
	wantAnnounce(t, c, "test", b)
	b.Close()
	wantUnannounce(t, c, "test")
}

func TestOriginSelectMaintainsAccessWithWiderPrefix(t *testing.T) {
	o := NewOrigin()
	bs := broadcasts(t, 2)
	user := o.WithRoot("demo").PublishOnly("worm-node", "foobar")
	publish(t, user, "worm-node/data", bs[0])
	publish(t, user, "foobar", bs[1])

	c := originConsumer(t, user.ConsumeOnly(""))
	if got := drainPaths(t, c, 2); fmt.Sprint(got) != "[foobar worm-node/data]" {
		t.Fatalf("paths = %q", got)
	}

	narrow := originConsumer(t, user.ConsumeOnly("worm-node"))
	wantAnnounce(t, narrow, "worm-node/data", bs[0])
	noAnnounce(t, narrow)
}

func TestOriginDuplicatePrefixesDeduped(t *testing.T) {
	b := newTestBroadcast(t)
	p := NewOrigin().PublishOnly("demo", "demo")
	publish(t, p, "demo/stream", b)
	c := originConsumer(t, p.Consume())
	wantAnnounce(t, c, "demo/stream", b)
	noAnnounce(t, c)
}

func TestOriginOverlappingPrefixesDeduped(t *testing.T) {
	b := newTestBroadcast(t)
	p := NewOrigin().PublishOnly("demo", "demo/foo")
	publish(t, p, "demo/bar/stream", b) // "demo" covers everything below it
	c := originConsumer(t, p.Consume())
	wantAnnounce(t, c, "demo/bar/stream", b)
	noAnnounce(t, c)
}

func TestOriginOverlappingPrefixesNoDuplicateAnnouncements(t *testing.T) {
	b := newTestBroadcast(t)
	p := NewOrigin().PublishOnly("demo", "demo/foo")
	publish(t, p, "demo/foo/stream", b)
	c := originConsumer(t, p.Consume())
	wantAnnounce(t, c, "demo/foo/stream", b) // once, not once per prefix
	noAnnounce(t, c)
}

func TestOriginAllowedReturnsDedupedPrefixes(t *testing.T) {
	p := NewOrigin().PublishOnly("demo", "demo/foo", "anon")
	if got := p.Allowed(); fmt.Sprint(got) != "[anon demo]" {
		t.Fatalf("Allowed = %q, want [anon demo]", got)
	}
}

func TestOriginPrefixSegmentBoundary(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	c := originConsumer(t, o.ConsumeOnly("foo"))
	publish(t, o, "foobar/x", b)
	publish(t, o, "foo/x", b)
	wantAnnounce(t, c, "foo/x", b)
	noAnnounce(t, c)
	if o.ConsumeBroadcast("foo") != nil {
		t.Fatal("ConsumeBroadcast(foo) found a broadcast")
	}
}

func TestOriginAbortUnannounces(t *testing.T) {
	o := NewOrigin()
	b := newTestBroadcast(t)
	c := originConsumer(t, o.Consume())
	publish(t, o, "live", b)
	wantAnnounce(t, c, "live", b)
	noErr(t, "Abort", b.Abort(ErrTimeout))
	wantUnannounce(t, c, "live")
	if o.ConsumeBroadcast("live") != nil {
		t.Fatal("aborted broadcast still announced")
	}
}

func TestOriginPublishEndedBroadcast(t *testing.T) {
	o := NewOrigin()
	b := NewBroadcast()
	b.Close()
	c := originConsumer(t, o.Consume())
	if !o.PublishBroadcast("gone", b.Consume()) {
		t.Fatal("PublishBroadcast refused an allowed path")
	}
	noAnnounce(t, c)
	if o.ConsumeBroadcast("gone") != nil {
		t.Fatal("ended broadcast announced")
	}
	if o.PublishBroadcast("x", nil) {
		t.Fatal("PublishBroadcast accepted nil")
	}
}

func TestOriginCreateBroadcastRefused(t *testing.T) {
	b, ok := NewOrigin().PublishOnly("a").CreateBroadcast("b")
	if ok || b != nil {
		t.Fatal("CreateBroadcast outside the scope")
	}
}

func TestOriginConsumerClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := NewOrigin()
		c := o.Consume()
		errc := make(chan error)
		go func() {
			_, err := c.Announced(context.Background())
			errc <- err
		}()
		synctest.Wait()
		c.Close()
		c.Close() // idempotent
		isErr(t, "Announced", <-errc, ErrClosed)
		if _, ok := c.TryAnnounced(); ok {
			t.Fatal("TryAnnounced after Close")
		}
	})
}

func TestOriginConsumerWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := NewOrigin()
		c := originConsumer(t, o.Consume())
		got := make(chan Announce)
		go func() {
			a, err := c.Announced(context.Background())
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
	c := o.ConsumeOnly("a/b")
	b := newTestBroadcast(t)
	publish(t, o, "a/b/c/d", b)
	publish(t, o, "x/y", b)
	if n := originNodes(o); n != 7 {
		t.Fatalf("nodes = %d, want 7", n)
	}
	b.Close()
	if n := originNodes(o); n != 3 { // root, a, a/b (the consumer's node)
		t.Fatalf("nodes = %d after unannounce, want 3", n)
	}
	c.Close()
	if n := originNodes(o); n != 1 {
		t.Fatalf("nodes = %d after close, want 1", n)
	}
}

func TestOriginGarbageCollectedConsumer(t *testing.T) {
	o := NewOrigin()
	func() { _ = o.ConsumeOnly("leak") }()
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
		c := originConsumer(t, o.Consume())
		cwg.Go(func() {
			live := map[Path]bool{}
			for {
				a, err := c.Announced(ctx)
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
				b, ok := o.CreateBroadcast(path)
				if !ok {
					t.Error("CreateBroadcast refused")
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

	// Every consumer must converge on what the origin has now: Announced
	// drains the queue before it reports the cancelled context.
	want := map[Path]bool{}
	check := originConsumer(t, o.Consume())
	for {
		a, ok := check.TryAnnounced()
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

	all := originConsumer(t, o.Consume())
	room := originConsumer(t, all.WithRoot("room"))
	if room.Root() != "room" || fmt.Sprint(room.Allowed()) != "[]" || len(room.Allowed()) != 1 {
		t.Fatalf("Root %q Allowed %q", room.Root(), room.Allowed())
	}
	wantAnnounce(t, room, "a/cam", bs[0])
	noAnnounce(t, room)
	if got := room.ConsumeBroadcast("a/cam"); got == nil || !got.SameBroadcast(bs[0].Consume()) {
		t.Fatal("ConsumeBroadcast relative to the root failed")
	}

	onlyA := originConsumer(t, room.ConsumeOnly("a"))
	if fmt.Sprint(onlyA.Allowed()) != "[a]" {
		t.Fatalf("Allowed = %q", onlyA.Allowed())
	}
	wantAnnounce(t, onlyA, "a/cam", bs[0])
	if onlyA.ConsumeOnly("b") != nil {
		t.Fatal("ConsumeOnly outside the scope")
	}
	if onlyA.WithRoot("b") != nil {
		t.Fatal("WithRoot outside the scope")
	}
	deeper := originConsumer(t, onlyA.WithRoot("a"))
	if deeper.Root() != "room/a" {
		t.Fatalf("Root = %q", deeper.Root())
	}
	wantAnnounce(t, deeper, "cam", bs[0])
}
