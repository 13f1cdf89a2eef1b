package moq

import (
	"cmp"
	"slices"
	"strings"

	"github.com/moqgo/moq/internal/path"
)

// Path is a broadcast path: slash-separated segments without leading,
// trailing or repeated slashes. NewPath builds one; methods also normalise a
// Path converted directly from a string, so Path("/a//b/") behaves as "a/b".
// Prefix operations work on whole segments: "foo" is a prefix of "foo/bar"
// but not of "foobar".
type Path string

// NewPath joins parts with "/" and normalises the result.
func NewPath(parts ...string) Path { return Path(path.Clean(parts...)) }

// clean returns p in normal form, without allocating when it already is.
func (p Path) clean() Path {
	if path.IsClean(string(p)) {
		return p
	}
	return NewPath(string(p))
}

// String returns the path as a string.
func (p Path) String() string { return string(p.clean()) }

// IsEmpty reports whether p has no segments.
func (p Path) IsEmpty() bool { return p.clean() == "" }

// HasPrefix reports whether prefix is a whole-segment prefix of p. The empty
// path is a prefix of every path.
func (p Path) HasPrefix(prefix Path) bool {
	_, ok := p.StripPrefix(prefix)
	return ok
}

// StripPrefix returns p without prefix and true when prefix is a
// whole-segment prefix of p; otherwise it returns "" and false.
func (p Path) StripPrefix(prefix Path) (Path, bool) {
	p, prefix = p.clean(), prefix.clean()
	if prefix == "" {
		return p, true
	}
	if !strings.HasPrefix(string(p), string(prefix)) {
		return "", false
	}
	if len(p) == len(prefix) {
		return "", true
	}
	if p[len(prefix)] != '/' {
		return "", false
	}
	return p[len(prefix)+1:], true
}

// Join returns p followed by other.
func (p Path) Join(other Path) Path {
	p, other = p.clean(), other.clean()
	switch {
	case p == "":
		return other
	case other == "":
		return p
	default:
		return p + "/" + other
	}
}

// NextPart splits off the first segment: "a/b/c" gives "a" and "b/c". The
// empty path gives "" and "".
func (p Path) NextPart() (first string, rest Path) {
	p = p.clean()
	if i := strings.IndexByte(string(p), '/'); i >= 0 {
		return string(p[:i]), p[i+1:]
	}
	return string(p), ""
}

// comparePaths orders paths by length, then lexicographically: the canonical
// order of a prefix list, shortest (most permissive) first.
func comparePaths(a, b Path) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(string(a), string(b))
}

// prefixSet normalises, sorts and deduplicates prefixes, dropping any prefix
// covered by a shorter one ("a" covers "a/b"). The result is in canonical
// order and its members never overlap.
func prefixSet(prefixes []Path) []Path {
	out := make([]Path, 0, len(prefixes))
	for _, p := range prefixes {
		out = append(out, p.clean())
	}
	slices.SortFunc(out, comparePaths)
	out = slices.Compact(out)
	kept := out[:0]
	for _, p := range out {
		covered := slices.ContainsFunc(kept, func(k Path) bool { return p.HasPrefix(k) })
		if !covered {
			kept = append(kept, p)
		}
	}
	return kept
}
