// Package path normalises the slash-separated broadcast paths used on the wire.
package path

import "strings"

// Clean joins parts with "/", collapses runs of "/" and strips leading and
// trailing "/": Clean("//room/alice//") is "room/alice" and Clean("/") is "".
// Segments are otherwise kept as they are ("." and ".." have no meaning).
func Clean(parts ...string) string {
	var b strings.Builder
	for _, part := range parts {
		for seg := range strings.SplitSeq(part, "/") {
			if seg == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('/')
			}
			b.WriteString(seg)
		}
	}
	return b.String()
}

// IsClean reports whether s is already in the form Clean returns, so callers can
// skip the allocation on the common path.
func IsClean(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == '/' || s[len(s)-1] == '/' {
		return false
	}
	return !strings.Contains(s, "//")
}
