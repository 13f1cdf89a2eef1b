package token

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq"
)

func TestClaimsMarshal(t *testing.T) {
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name   string
		claims Claims
		want   string
	}{
		{"root always present", Claims{Subscribe: []string{""}}, `{"root":"","get":[""]}`},
		{"grants as arrays", Claims{Root: "demo", Publish: []string{"a"}, Subscribe: []string{"b", "c"}},
			`{"root":"demo","put":["a"],"get":["b","c"]}`},
		{"cluster only when true", Claims{Root: "r", Publish: []string{""}, Cluster: true},
			`{"root":"r","put":[""],"cluster":true}`},
		{"times in seconds", Claims{Publish: []string{"x"}, Expires: at.Add(1500 * time.Millisecond), IssuedAt: at, NotBefore: at},
			`{"root":"","put":["x"],"exp":1700000001,"iat":1700000000,"nbf":1700000000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestClaimsUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Claims
		wantErr string
	}{
		{"strings", `{"root":"demo","put":"a","get":""}`, Claims{Root: "demo", Publish: []string{"a"}, Subscribe: []string{""}}, ""},
		{"arrays", `{"root":"demo","put":["a","b"],"get":[]}`, Claims{Root: "demo", Publish: []string{"a", "b"}, Subscribe: []string{}}, ""},
		{"missing root", `{"get":["x"]}`, Claims{Subscribe: []string{"x"}}, ""},
		{"nulls", `{"root":null,"put":null,"get":["x"],"exp":null}`, Claims{Subscribe: []string{"x"}}, ""},
		{"times", `{"get":["x"],"exp":1700000000,"iat":1700000000.5,"nbf":1}`, Claims{
			Subscribe: []string{"x"}, Expires: time.Unix(1700000000, 0),
			IssuedAt: time.Unix(1700000000, 5e8), NotBefore: time.Unix(1, 0),
		}, ""},
		{"cluster and unknown claims", `{"get":["x"],"cluster":true,"sub":"alice","aud":["relay"]}`, Claims{Subscribe: []string{"x"}, Cluster: true}, ""},
		{"put number", `{"put":5}`, Claims{}, `"put" must be a string`},
		{"get mixed array", `{"get":["a",1]}`, Claims{}, `"get" must be a string`},
		{"exp string", `{"get":["x"],"exp":"tomorrow"}`, Claims{}, `"exp" must be a number`},
		{"exp huge", `{"get":["x"],"exp":1e300}`, Claims{}, `"exp" must be a number`},
		{"root number", `{"root":1,"get":["x"]}`, Claims{}, "cannot unmarshal"},
		{"not an object", `[]`, Claims{}, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Claims
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalClaims(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func equalClaims(a, b Claims) bool {
	return a.Root == b.Root && slices.Equal(a.Publish, b.Publish) && slices.Equal(a.Subscribe, b.Subscribe) &&
		a.Cluster == b.Cluster && a.Expires.Equal(b.Expires) && a.IssuedAt.Equal(b.IssuedAt) && a.NotBefore.Equal(b.NotBefore)
}

func TestClaimsValidate(t *testing.T) {
	tests := []struct {
		name   string
		claims Claims
		want   error
	}{
		{"nothing", Claims{Root: "demo"}, ErrUseless},
		{"empty lists", Claims{Root: "demo", Publish: []string{}, Subscribe: []string{}}, ErrUseless},
		{"publish", Claims{Publish: []string{"a"}}, nil},
		{"subscribe everything", Claims{Subscribe: []string{""}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.claims.Validate(); !errors.Is(err, tt.want) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func paths(s ...string) []moq.Path {
	var out []moq.Path
	for _, p := range s {
		out = append(out, moq.Path(p))
	}
	return out
}

func TestScope(t *testing.T) {
	tests := []struct {
		name     string
		root     string
		put, get []string
		url      string
		want     Scope
		wantErr  error
	}{
		{"same path", "demo", []string{"alice"}, []string{""}, "/demo",
			Scope{Root: "demo", Publish: paths("alice"), Subscribe: paths("")}, nil},
		{"slashes are implicit", "/demo/", []string{"/alice/"}, []string{"//"}, "demo//",
			Scope{Root: "demo", Publish: paths("alice"), Subscribe: paths("")}, nil},
		{"longer path narrows", "demo", []string{"room/alice", "other"}, []string{""}, "/demo/room",
			Scope{Root: "demo/room", Publish: paths("alice"), Subscribe: paths("")}, nil},
		{"longer path inside a grant", "demo", []string{"room"}, nil, "/demo/room/alice/cam",
			Scope{Root: "demo/room/alice/cam", Publish: paths("")}, nil},
		{"shorter path keeps the token's reach", "demo/room", []string{"alice"}, []string{""}, "/",
			Scope{Root: "", Publish: paths("demo/room/alice"), Subscribe: paths("demo/room")}, nil},
		{"shorter path, partly", "a/b/c", []string{"d"}, nil, "/a",
			Scope{Root: "a", Publish: paths("b/c/d")}, nil},
		{"empty root, any path", "", nil, []string{""}, "/anything/deep",
			Scope{Root: "anything/deep", Subscribe: paths("")}, nil},
		{"duplicates and covered prefixes dropped", "", []string{"a/b", "a", "c", "a/", "b/c"}, nil, "",
			Scope{Root: "", Publish: paths("a", "c", "b/c")}, nil},
		{"segment aware root", "foo", []string{""}, nil, "/foobar", Scope{}, ErrRootMismatch},
		{"sibling", "demo/a", []string{""}, nil, "/demo/b", Scope{}, ErrRootMismatch},
		{"segment aware grant", "demo", []string{"room"}, nil, "/demo/roomy", Scope{}, ErrNoAccess},
		{"no grant reaches the path", "demo", []string{"a"}, []string{"b"}, "/demo/c", Scope{}, ErrNoAccess},
		{"one role survives", "demo", []string{"a"}, []string{""}, "/demo/c",
			Scope{Root: "demo/c", Subscribe: paths("")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Claims{Root: tt.root, Publish: tt.put, Subscribe: tt.get}.Scope(tt.url)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Scope(%q) error %v, want %v", tt.url, err, tt.wantErr)
			}
			if got.Root != tt.want.Root || !slices.Equal(got.Publish, tt.want.Publish) || !slices.Equal(got.Subscribe, tt.want.Subscribe) {
				t.Errorf("Scope(%q) = %+v, want %+v", tt.url, got, tt.want)
			}
		})
	}
}

func TestScopeAllows(t *testing.T) {
	s := Scope{Root: "demo", Publish: paths("alice"), Subscribe: paths("room", "")}
	tests := []struct {
		path               moq.Path
		publish, subscribe bool
	}{
		{"alice", true, true},
		{"alice/cam", true, true},
		{"/alice/", true, true},
		{"alicex", false, true},
		{"bob", false, true},
		{"", false, true},
	}
	for _, tt := range tests {
		if got := s.CanPublish(tt.path); got != tt.publish {
			t.Errorf("CanPublish(%q) = %v, want %v", tt.path, got, tt.publish)
		}
		if got := s.CanSubscribe(tt.path); got != tt.subscribe {
			t.Errorf("CanSubscribe(%q) = %v, want %v", tt.path, got, tt.subscribe)
		}
	}
	none := Scope{Root: "demo", Subscribe: paths("a")}
	if none.CanPublish("a") || none.CanSubscribe("b") || !none.CanSubscribe("a/b") {
		t.Error("a scope without publish grants allowed publishing, or its subscribe grant was wrong")
	}
}
