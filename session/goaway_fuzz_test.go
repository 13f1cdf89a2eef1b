package session

import (
	"errors"
	"net/url"
	"testing"

	"github.com/moqgo/moq"
)

// FuzzResolveGoAway resolves arbitrary GOAWAY URIs, which the peer chooses,
// against arbitrary session URLs: it never panics; it fails only with an
// error wrapping moq.ErrProtocolViolation or with the error of parsing
// base; from an absolute base with a host it succeeds only with an absolute
// URL with a host, which resolves to itself again.
func FuzzResolveGoAway(f *testing.F) {
	for _, s := range [][2]string{
		{"https://relay.example.com/moq", "https://relay2.example.com/moq"},
		{"https://relay.example.com/moq", ""},
		{"https://relay.example.com:4443/room/a", "../b?x=1#f"},
		{"https://relay.example.com/moq", "//other.example.com:4443/"},
		{"moqt://[::1]:4443", "moql://127.0.0.1:4443"},
		{"wss://relay.example.com/moq", "/other"},
		{"https://relay.example.com/moq", "https:"},
		{"https://relay.example.com/moq", "mailto:ops@example.com"},
		{"https://relay.example.com/moq", "http://[::1"},
		{"https://relay.example.com/moq", "%zz"},
		{"https://relay.example.com/moq", " https://x/"},
		{"::bad base", "https://x/"},
		{"relative/base", "other"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, base, uri string) {
		got, err := resolveGoAway(base, uri)
		b, berr := url.Parse(base)
		if err != nil {
			if !errors.Is(err, moq.ErrProtocolViolation) && (berr == nil || err.Error() != berr.Error()) {
				t.Fatalf("resolveGoAway(%q, %q): %v wraps no protocol violation and is not base's %v", base, uri, err, berr)
			}
			return
		}
		if uri == "" {
			if got != base {
				t.Fatalf("resolveGoAway(%q, \"\") = %q, want base", base, got)
			}
			return
		}
		if berr != nil || !b.IsAbs() || b.Host == "" {
			return // no client is connected to such a base
		}
		u, err := url.Parse(got)
		if err != nil || !u.IsAbs() || u.Host == "" {
			t.Fatalf("resolveGoAway(%q, %q) = %q, not an absolute URL with a host (%v)", base, uri, got, err)
		}
		if again, err := resolveGoAway(got, got); err != nil || again != got {
			t.Fatalf("resolveGoAway(%q, %q) = %q, which resolves against itself to %q (%v)", base, uri, got, again, err)
		}
	})
}
