package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/moqgo/moq"
)

// Claims is a token's payload. Publish and Subscribe are path prefixes
// relative to Root; the empty prefix grants everything below Root. Paths are
// kept as written: slashes at the ends and repeated slashes are ignored when
// they are used (see Scope).
type Claims struct {
	// Root is the path the grants are relative to ("root").
	Root string
	// Publish lists the prefixes the holder may publish below ("put").
	Publish []string
	// Subscribe lists the prefixes the holder may subscribe to ("get").
	Subscribe []string
	// Cluster marks a relay of the same cluster ("cluster"). Current
	// reference releases no longer define it and ignore it; it is sent only
	// when true.
	Cluster bool
	// Expires is when the token stops being valid ("exp"); zero is never.
	Expires time.Time
	// IssuedAt is when the token was signed ("iat"); informational.
	IssuedAt time.Time
	// NotBefore is when the token starts being valid ("nbf"); zero is at once.
	NotBefore time.Time
}

// Validate returns ErrUseless when the claims grant nothing.
func (c Claims) Validate() error {
	if len(c.Publish) == 0 && len(c.Subscribe) == 0 {
		return ErrUseless
	}
	return nil
}

// claimsJSON is the wire form. "root" is always present: @moq/token requires it.
type claimsJSON struct {
	Root    string          `json:"root"`
	Put     json.RawMessage `json:"put,omitempty"`
	Get     json.RawMessage `json:"get,omitempty"`
	Cluster bool            `json:"cluster,omitempty"`
	Exp     json.RawMessage `json:"exp,omitempty"`
	Iat     json.RawMessage `json:"iat,omitempty"`
	Nbf     json.RawMessage `json:"nbf,omitempty"`
}

// MarshalJSON encodes the claims with their JWT names: grants as arrays,
// times as whole seconds since the Unix epoch, unset fields left out.
func (c Claims) MarshalJSON() ([]byte, error) {
	w := claimsJSON{Root: c.Root, Cluster: c.Cluster}
	var err error
	if len(c.Publish) > 0 {
		if w.Put, err = json.Marshal(c.Publish); err != nil {
			return nil, err
		}
	}
	if len(c.Subscribe) > 0 {
		if w.Get, err = json.Marshal(c.Subscribe); err != nil {
			return nil, err
		}
	}
	w.Exp, w.Iat, w.Nbf = encodeTime(c.Expires), encodeTime(c.IssuedAt), encodeTime(c.NotBefore)
	return json.Marshal(w)
}

// UnmarshalJSON decodes JWT claims. "put" and "get" may be a string or an
// array of strings; times may be integer or fractional seconds. A missing
// "root" is the empty root; claims this package does not know are ignored.
func (c *Claims) UnmarshalJSON(data []byte) error {
	var w struct {
		Root    *string         `json:"root"`
		Put     json.RawMessage `json:"put"`
		Get     json.RawMessage `json:"get"`
		Cluster *bool           `json:"cluster"`
		Exp     json.RawMessage `json:"exp"`
		Iat     json.RawMessage `json:"iat"`
		Nbf     json.RawMessage `json:"nbf"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	var out Claims
	if w.Root != nil {
		out.Root = *w.Root
	}
	if w.Cluster != nil {
		out.Cluster = *w.Cluster
	}
	var err error
	if out.Publish, err = decodePaths("put", w.Put); err != nil {
		return err
	}
	if out.Subscribe, err = decodePaths("get", w.Get); err != nil {
		return err
	}
	if out.Expires, err = decodeTime("exp", w.Exp); err != nil {
		return err
	}
	if out.IssuedAt, err = decodeTime("iat", w.Iat); err != nil {
		return err
	}
	if out.NotBefore, err = decodeTime("nbf", w.Nbf); err != nil {
		return err
	}
	*c = out
	return nil
}

func decodePaths(name string, raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("%q must be a string or an array of strings", name)
	}
	return many, nil
}

// maxSeconds bounds the times accepted, so that float seconds convert exactly.
const maxSeconds = 1 << 53

func encodeTime(t time.Time) json.RawMessage {
	if t.IsZero() {
		return nil
	}
	return json.RawMessage(fmt.Sprint(t.Unix()))
}

func decodeTime(name string, raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return time.Time{}, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.Abs(f) > maxSeconds {
		return time.Time{}, fmt.Errorf("%q must be a number of seconds since 1970", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// Scope is what a verified token allows on one connection: the connection's
// path is the session root, and the prefixes are relative to it. An empty
// prefix allows everything below Root. Prefix lists are sorted shortest
// first, with duplicates and prefixes covered by another one removed.
type Scope struct {
	Root      moq.Path
	Publish   []moq.Path
	Subscribe []moq.Path
}

// Scope applies the claims to a connection whose URL path is urlPath. The
// path and Root must overlap on whole segments: a path below Root narrows
// each grant to what lies below the path (dropping grants elsewhere), and a
// path above Root keeps the token's reach by prefixing the rest of Root to
// each grant. A path that does not overlap Root is refused with
// ErrRootMismatch, and one no grant reaches with ErrNoAccess.
//
// Scope does not check the signature or the times: use it on claims that
// Verify returned.
func (c Claims) Scope(urlPath string) (Scope, error) {
	path, root := moq.NewPath(urlPath), moq.NewPath(c.Root)
	// below is how far the path reaches below Root; above how far Root
	// reaches below the path. At most one is non-empty.
	var below, above moq.Path
	if rest, ok := path.StripPrefix(root); ok {
		below = rest
	} else if rest, ok := root.StripPrefix(path); ok {
		above = rest
	} else {
		return Scope{}, fmt.Errorf("%w: path %q, root %q", ErrRootMismatch, path, root)
	}
	rebase := func(grants []string) []moq.Path {
		var out []moq.Path
		for _, g := range grants {
			grant := above.Join(moq.NewPath(g))
			if rest, ok := grant.StripPrefix(below); ok {
				out = append(out, rest) // the grant lies below the path
			} else if below.HasPrefix(grant) {
				out = append(out, "") // the grant contains the path
			}
		}
		return prefixSet(out)
	}
	s := Scope{Root: path, Publish: rebase(c.Publish), Subscribe: rebase(c.Subscribe)}
	if len(s.Publish) == 0 && len(s.Subscribe) == 0 {
		return Scope{}, fmt.Errorf("%w %q", ErrNoAccess, path)
	}
	return s, nil
}

// CanPublish reports whether the scope allows publishing the broadcast p
// (relative to Root).
func (s Scope) CanPublish(p moq.Path) bool { return covered(p, s.Publish) }

// CanSubscribe reports whether the scope allows subscribing to the broadcast
// p (relative to Root).
func (s Scope) CanSubscribe(p moq.Path) bool { return covered(p, s.Subscribe) }

func covered(p moq.Path, prefixes []moq.Path) bool {
	return slices.ContainsFunc(prefixes, func(prefix moq.Path) bool { return p.HasPrefix(prefix) })
}

// prefixSet sorts prefixes shortest first and drops duplicates and prefixes
// another one covers.
func prefixSet(prefixes []moq.Path) []moq.Path {
	slices.SortFunc(prefixes, func(a, b moq.Path) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(string(a), string(b))
	})
	var kept []moq.Path
	for _, p := range prefixes {
		if !covered(p, kept) {
			kept = append(kept, p)
		}
	}
	return kept
}
