package bench

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in   string
		want Range
		err  bool
	}{
		{in: "5", want: Range{5, 5}},
		{in: "0", want: Range{0, 0}},
		{in: "1:5", want: Range{1, 5}},
		{in: " 2 : 3 ", want: Range{2, 3}},
		{in: "0.5:2", want: Range{0.5, 2}},
		{in: "7:7", want: Range{7, 7}},
		{in: "", err: true},
		{in: "a", err: true},
		{in: "5:1", err: true},
		{in: "-1", err: true},
		{in: "1:", err: true},
		{in: ":2", err: true},
		{in: "1:2:3", err: true},
		{in: "NaN", err: true},
		{in: "inf", err: true},
		{in: "1e400", err: true},
	}
	for _, tc := range tests {
		got, err := ParseRange(tc.in)
		if tc.err {
			if !errors.Is(err, ErrRange) {
				t.Errorf("ParseRange(%q) = %v, %v; want ErrRange", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRange(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		again, err := ParseRange(got.String())
		if err != nil || again != got {
			t.Errorf("ParseRange(%q.String() = %q) = %v, %v", tc.in, got.String(), again, err)
		}
	}
}

func TestRangeUnmarshalTOML(t *testing.T) {
	tests := []struct {
		in   any
		want Range
		err  bool
	}{
		{in: int64(3), want: Range{3, 3}},
		{in: 2.5, want: Range{2.5, 2.5}},
		{in: "10:20", want: Range{10, 20}},
		{in: int64(-2), err: true},
		{in: true, err: true},
		{in: "x", err: true},
	}
	for _, tc := range tests {
		var r Range
		err := r.UnmarshalTOML(tc.in)
		if tc.err != (err != nil) || (!tc.err && r != tc.want) {
			t.Errorf("UnmarshalTOML(%#v) = %v, %v; want %v (error %t)", tc.in, r, err, tc.want, tc.err)
		}
	}
}

func TestRangeRoll(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		r      Range
		lo, hi int
	}{
		{Range{3, 3}, 3, 3},
		{Range{1, 4}, 1, 4},
		{Range{0.5, 2.5}, 1, 2},
		{Range{0, 0}, 0, 0},
	}
	for _, tc := range tests {
		seen := make(map[int]bool)
		for range 1000 {
			v := tc.r.RollInt(rng)
			if v < tc.lo || v > tc.hi {
				t.Fatalf("%v.RollInt() = %d, want %d..%d", tc.r, v, tc.lo, tc.hi)
			}
			seen[v] = true
			if f := tc.r.Roll(rng); f < tc.r.Min || f > tc.r.Max {
				t.Fatalf("%v.Roll() = %g, out of range", tc.r, f)
			}
		}
		if len(seen) != tc.hi-tc.lo+1 {
			t.Errorf("%v.RollInt() rolled %v in 1000 tries, want every value in %d..%d", tc.r, seen, tc.lo, tc.hi)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"5", "1:5", "0.5:2", " 2 : 3 ", "5:1", "-1", "1:2:3", "NaN", "1e400", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if !errors.Is(err, ErrRange) {
				t.Fatalf("error %v is not ErrRange", err)
			}
			return
		}
		if r.Min < 0 || r.Min > r.Max {
			t.Fatalf("ParseRange(%q) = %v", s, r)
		}
		again, err := ParseRange(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRange(%q) = %v, but its String %q parses as %v, %v", s, r, r.String(), again, err)
		}
	})
}
