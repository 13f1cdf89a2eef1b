package session

import (
	"errors"
	"testing"

	"github.com/moqgo/moq"
)

func TestResolveGoAway(t *testing.T) {
	cases := []struct {
		base, uri, want string
		refused         bool
	}{
		{"https://a:1/room", "", "https://a:1/room", false},
		{"https://a:1/room", "https://b:2/room", "https://b:2/room", false},
		{"https://a:1/room", "//b:2/other", "https://b:2/other", false},
		{"https://a:1/room", "/moved", "https://a:1/moved", false},
		{"http://a:1/", "https://b:2/", "https://b:2/", false},
		{"http://a:1/", "ws://a:1/", "ws://a:1/", false},
		{"moqt://a:1", "wss://b:2/", "wss://b:2/", false},
		{"https://a:1/", "http://b:2/", "", true}, // certificate hash fetched in the clear
		{"wss://a:1/", "ws://b:2/", "", true},     // no TLS at all
		{"https://a:1/", "https:", "", true},      // no host
		{"https://a:1/", "%zz", "", true},         // not a URI
	}
	for _, c := range cases {
		got, err := resolveGoAway(c.base, c.uri)
		switch {
		case c.refused && !errors.Is(err, moq.ErrProtocolViolation):
			t.Errorf("resolveGoAway(%q, %q) = %q, %v; want a protocol violation", c.base, c.uri, got, err)
		case !c.refused && (err != nil || got != c.want):
			t.Errorf("resolveGoAway(%q, %q) = %q, %v; want %q", c.base, c.uri, got, err, c.want)
		}
	}
}
