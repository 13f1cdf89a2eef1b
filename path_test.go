package moq

import (
	"fmt"
	"strings"
	"testing"
)

func TestPathNew(t *testing.T) {
	tests := []struct {
		in   []string
		want Path
	}{
		{[]string{"/foo/bar/"}, "foo/bar"},
		{[]string{"///foo///"}, "foo"},
		{[]string{"foo//bar///baz"}, "foo/bar/baz"},
		{[]string{"//foo//bar///baz//"}, "foo/bar/baz"},
		{[]string{"foo///bar"}, "foo/bar"},
		{[]string{"foo////bar"}, "foo/bar"},
		{[]string{"a//b//c//d"}, "a/b/c/d"},
		{[]string{"foo//bar///baz////qux"}, "foo/bar/baz/qux"},
		{[]string{"///foo///bar///"}, "foo/bar"},
		{[]string{"//"}, ""},
		{[]string{"////"}, ""},
		{[]string{""}, ""},
		{nil, ""},
		{[]string{"foo", "/bar/", "baz"}, "foo/bar/baz"},
	}
	for _, tt := range tests {
		if got := NewPath(tt.in...); got != tt.want {
			t.Errorf("NewPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPathHasPrefix(t *testing.T) {
	tests := []struct {
		path, prefix Path
		want         bool
	}{
		{"foo/bar/baz", "", true},
		{"foo/bar/baz", "foo", true},
		{"foo/bar/baz", "foo/", true},
		{"foo/bar/baz", "foo/bar", true},
		{"foo/bar/baz", "foo/bar/", true},
		{"foo/bar/baz", "foo/bar/baz", true},
		{"foo/bar/baz", "f", false},
		{"foo/bar/baz", "fo", false},
		{"foo/bar/baz", "foo/b", false},
		{"foo/bar/baz", "foo/ba", false},
		{"foo/bar/baz", "foo/bar/ba", false},
		{"foobar", "foo", false},
		{"foobar", "foobar", true},
		{"foo/bar/", "foo", true}, // unnormalised receiver
		{"foo/bar/", "foo/bar/", true},
		{"foo", "foo/", true},
		{"foo", "f", false},
		{"", "", true},
		{"", "foo", false},
		{"foo//bar///baz", "foo/bar", true},
	}
	for _, tt := range tests {
		if got := tt.path.HasPrefix(tt.prefix); got != tt.want {
			t.Errorf("%q.HasPrefix(%q) = %v, want %v", tt.path, tt.prefix, got, tt.want)
		}
	}
}

func TestPathStripPrefix(t *testing.T) {
	tests := []struct {
		path, prefix Path
		want         Path
		ok           bool
	}{
		{"foo/bar/baz", "", "foo/bar/baz", true},
		{"foo/bar/baz", "foo", "bar/baz", true},
		{"foo/bar/baz", "foo/", "bar/baz", true},
		{"foo/bar/baz", "foo/bar", "baz", true},
		{"foo/bar/baz", "foo/bar/", "baz", true},
		{"foo/bar/baz", "foo/bar/baz", "", true},
		{"foo/bar/baz", "fo", "", false},
		{"foo/bar/baz", "bar", "", false},
		{"foo/bar/baz", "foo/ba", "", false},
		{"foobar", "foo", "", false},
		{"foobar", "foobar", "", true},
		{"", "", "", true},
		{"", "foo", "", false},
		{"foo", "foo", "", true},
		{"foo", "foo/", "", true},
		{"foo/bar/", "foo", "bar", true},
		{"foo/bar/", "foo/", "bar", true},
		{"foo/bar/", "foo/bar", "", true},
		{"foo/bar/", "foo/bar/", "", true},
		{"foo//bar///baz", "foo", "bar/baz", true},
	}
	for _, tt := range tests {
		got, ok := tt.path.StripPrefix(tt.prefix)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q.StripPrefix(%q) = %q, %v; want %q, %v", tt.path, tt.prefix, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPathJoin(t *testing.T) {
	tests := []struct {
		a, b, want Path
	}{
		{"foo", "bar", "foo/bar"},
		{"foo/", "bar", "foo/bar"},
		{"foo", "/bar", "foo/bar"},
		{"foo", "bar/", "foo/bar"},
		{"foo/", "/bar", "foo/bar"},
		{"foo", "", "foo"},
		{"", "bar", "bar"},
		{"", "", ""},
		{"foo/bar", "baz/qux", "foo/bar/baz/qux"},
		{"foo/bar/", "/baz/qux/", "foo/bar/baz/qux"},
		{"", "bar/baz", "bar/baz"},
		{"foo//bar///baz", "qux", "foo/bar/baz/qux"},
	}
	for _, tt := range tests {
		if got := tt.a.Join(tt.b); got != tt.want {
			t.Errorf("%q.Join(%q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestPathEmptyAndString(t *testing.T) {
	if !NewPath("").IsEmpty() || !Path("//").IsEmpty() || NewPath("foo").IsEmpty() {
		t.Fatal("IsEmpty is wrong")
	}
	if got := Path("/foo//bar/").String(); got != "foo/bar" {
		t.Fatalf("String = %q", got)
	}
	if len(NewPath("foo/bar")) != 7 || len(NewPath("")) != 0 {
		t.Fatal("length of a normalised path is wrong")
	}
}

func TestPathNextPart(t *testing.T) {
	tests := []struct {
		in          Path
		first, rest string
	}{
		{"a/b/c", "a", "b/c"},
		{"a", "a", ""},
		{"", "", ""},
		{"/a//b/", "a", "b"},
	}
	for _, tt := range tests {
		first, rest := tt.in.NextPart()
		if first != tt.first || string(rest) != tt.rest {
			t.Errorf("%q.NextPart() = %q, %q; want %q, %q", tt.in, first, rest, tt.first, tt.rest)
		}
	}
}

func TestPathPrefixSet(t *testing.T) {
	tests := []struct {
		in   []Path
		want string
	}{
		{[]Path{"demo", "demo"}, "[demo]"},                       // exact duplicates
		{[]Path{"demo", "demo/foo", "anon"}, "[anon demo]"},      // overlap removed
		{[]Path{"demo/foo", "demo"}, "[demo]"},                   // order does not matter
		{[]Path{"", "demo", "anon"}, "[]"},                       // "" covers all (printed as one empty path)
		{[]Path{"demo", "anon", "secret"}, "[anon demo secret]"}, // unrelated prefixes kept
		{[]Path{"demo"}, "[demo]"},
		{nil, "[]"},
		{[]Path{"a/b/c", "a/b", "a"}, "[a]"},
		{[]Path{"demo", "demonstration"}, "[demo demonstration]"}, // not a segment prefix
		{[]Path{"foo", "bar"}, "[bar foo]"},                       // canonical order
		{[]Path{"/demo/", "demo//x"}, "[demo]"},                   // normalised first
	}
	for _, tt := range tests {
		got := prefixSet(tt.in)
		if fmt.Sprint(got) != tt.want {
			t.Errorf("prefixSet(%q) = %q, want %s", tt.in, got, tt.want)
		}
	}
	if got := prefixSet([]Path{"", "demo"}); len(got) != 1 || got[0] != "" {
		t.Errorf("the empty prefix should subsume everything, got %q", got)
	}
	if len(prefixSet(nil)) != 0 {
		t.Error("empty input should give an empty set")
	}
	a, b := prefixSet([]Path{"foo", "bar"}), prefixSet([]Path{"bar", "foo"})
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("canonical order differs: %q vs %q", a, b)
	}
}

// FuzzPath checks the path invariants on arbitrary input, as received from
// the wire: normalisation is idempotent and never leaves empty segments,
// and prefix stripping and joining are inverse operations.
func FuzzPath(f *testing.F) {
	for _, seed := range [][2]string{
		{"foo/bar/baz", "foo"},
		{"//foo//bar///", "foo/bar/"},
		{"foobar", "foo"},
		{"", ""},
		{"a", "a/b"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		p, prefix := NewPath(a), NewPath(b)
		if NewPath(string(p)) != p || Path(a).String() != string(p) {
			t.Fatalf("normalisation of %q is not stable: %q", a, p)
		}
		if strings.HasPrefix(string(p), "/") || strings.HasSuffix(string(p), "/") || strings.Contains(string(p), "//") {
			t.Fatalf("NewPath(%q) = %q has empty segments", a, p)
		}
		rest, ok := p.StripPrefix(prefix)
		if ok != p.HasPrefix(prefix) {
			t.Fatalf("StripPrefix and HasPrefix disagree on %q, %q", p, prefix)
		}
		if ok && prefix.Join(rest) != p {
			t.Fatalf("%q.Join(%q) = %q, want %q", prefix, rest, prefix.Join(rest), p)
		}
		if !ok && p == prefix {
			t.Fatalf("%q is not its own prefix", p)
		}
		if first, tail := p.NextPart(); p != "" && Path(first).Join(tail) != p {
			t.Fatalf("NextPart(%q) = %q, %q", p, first, tail)
		}
		if got := p.Join(prefix); !got.HasPrefix(p) {
			t.Fatalf("%q.Join(%q) = %q lacks its prefix", p, prefix, got)
		}
	})
}
