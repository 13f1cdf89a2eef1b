package shrink

import (
	"runtime"
	"testing"
)

func TestMapCopiesWhenMostlyEmpty(t *testing.T) {
	m := make(map[int][]byte)
	peak := 0
	for i := range 1000 {
		m[i] = nil
		m = Map(m, &peak)
	}
	if peak != 1000 {
		t.Fatalf("peak %d, want 1000", peak)
	}
	for i := range 740 {
		delete(m, i)
		m = Map(m, &peak)
	}
	if peak != 1000 {
		t.Fatalf("copied at %d entries, above a quarter of the peak", len(m))
	}
	for i := 740; i < 760; i++ {
		delete(m, i)
		m = Map(m, &peak)
	}
	if len(m) != 240 || peak != 250 {
		t.Fatalf("after the copy: %d entries, peak %d; want 240 and the size at the copy, 250", len(m), peak)
	}
	for i := 760; i < 1000; i++ {
		if _, ok := m[i]; !ok {
			t.Fatalf("entry %d lost in the copy", i)
		}
	}
}

// TestMapFreesMemory checks the point of it: 100,000 entries deleted down
// to 10 hold almost nothing once copied.
func TestMapFreesMemory(t *testing.T) {
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := live()
	m := make(map[int]int)
	peak := 0
	for i := range 100_000 {
		m[i] = i
	}
	for i := range 100_000 - 10 {
		delete(m, i)
		m = Map(m, &peak)
	}
	if grown := int64(live()) - int64(before); grown > 64<<10 {
		t.Fatalf("%d bytes still held by a map of %d entries", grown, len(m))
	}
	runtime.KeepAlive(m)
}

func TestMapKeepsSmallMaps(t *testing.T) {
	m := map[int]int{1: 1}
	peak := 0
	if got := Map(m, &peak); len(got) != 1 {
		t.Fatal("lost an entry")
	}
}
