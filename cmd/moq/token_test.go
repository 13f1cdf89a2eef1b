package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq/token"
)

// runCLI runs a command line with stdin and returns its exit code and output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustRun runs a command line that must succeed and returns its stdout.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, stdin, args...)
	if code != 0 {
		t.Fatalf("moq %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// TestTokenRoundTrip generates keys, signs tokens and verifies them with the
// key file and with a key directory, for each kind of key.
func TestTokenRoundTrip(t *testing.T) {
	tests := []struct {
		alg  string
		sign []string
		want token.Claims
	}{
		{"HS256", []string{"--root", "demo", "--publish", "alice", "--subscribe", ""},
			token.Claims{Root: "demo", Publish: []string{"alice"}, Subscribe: []string{""}}},
		{"ES256", []string{"--subscribe", "a", "--subscribe", "b/c", "--expires", "1h"},
			token.Claims{Subscribe: []string{"a", "b/c"}}},
		{"eddsa", []string{"--root", "/rooms/1/", "--publish", "", "--cluster", "--expires", "7d"},
			token.Claims{Root: "/rooms/1/", Publish: []string{""}, Cluster: true}},
		{"PS256", []string{"--publish", "x"}, token.Claims{Publish: []string{"x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			keys := filepath.Join(dir, "keys")
			if err := os.Mkdir(keys, 0o755); err != nil {
				t.Fatal(err)
			}
			priv := filepath.Join(dir, "key.jwk")
			verifyKey := priv
			args := []string{"token", "generate", "--algorithm", tt.alg, "--id", "k1", "--out", priv}
			if alg, _ := token.ParseAlgorithm(tt.alg); !alg.Symmetric() {
				verifyKey = filepath.Join(keys, "k1.jwk")
				args = append(args, "--public", verifyKey)
			}
			out := mustRun(t, "", args...)
			if !strings.Contains(out, `"k1"`) {
				t.Errorf("generate printed %q", out)
			}
			if verifyKey == priv {
				// A shared secret goes to the relay as it is.
				data, _ := os.ReadFile(priv)
				if err := os.WriteFile(filepath.Join(keys, "k1.jwk"), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			k, err := token.LoadKey(priv)
			if err != nil || !strings.EqualFold(string(k.Algorithm()), tt.alg) || k.ID() != "k1" || !k.CanSign() {
				t.Fatalf("generated key %v, %v", k, err)
			}
			if info, _ := os.Stat(priv); info.Mode().Perm()&0o077 != 0 {
				t.Errorf("private key mode %v", info.Mode().Perm())
			}

			jwt := mustRun(t, "", append([]string{"token", "sign", "--key", priv}, tt.sign...)...)
			for _, v := range [][]string{{"--key", verifyKey}, {"--key", priv}, {"--key-dir", keys}} {
				out := mustRun(t, jwt, append([]string{"token", "verify"}, v...)...)
				var got token.Claims
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("verify %v printed %q: %v", v, out, err)
				}
				if got.Root != tt.want.Root || !slices.Equal(got.Publish, tt.want.Publish) ||
					!slices.Equal(got.Subscribe, tt.want.Subscribe) || got.Cluster != tt.want.Cluster {
					t.Errorf("verify %v: %+v, want %+v", v, got, tt.want)
				}
				if since := time.Since(got.IssuedAt); since < -time.Minute || since > time.Minute {
					t.Errorf("iat %v", got.IssuedAt)
				}
				if hasExpiry := slices.Contains(tt.sign, "--expires"); hasExpiry != !got.Expires.IsZero() || (hasExpiry && !got.Expires.After(time.Now())) {
					t.Errorf("exp %v with sign flags %q", got.Expires, tt.sign)
				}
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	mustRun(t, "", "token", "generate", "--algorithm", "ES256", "--out", file("es.jwk"), "--public", file("es.pub"))
	mustRun(t, "", "token", "generate", "--out", file("hs.jwk"))
	mustRun(t, "", "token", "generate", "--out", file("other.jwk"))
	if err := os.WriteFile(file("bad.jwk"), []byte(`{"kty":"oct","alg":"HS256","k":"c2hvcnQ"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	hs, err := token.LoadKey(file("hs.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c token.Claims) string {
		jwt, err := hs.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return jwt
	}
	good := sign(token.Claims{Publish: []string{"a"}})
	expired := sign(token.Claims{Publish: []string{"a"}, Expires: time.Now().Add(-time.Minute)})
	parts := strings.Split(good, ".")
	tampered := parts[0] + ".eyJyb290IjoiIiwicHV0IjpbIiJdfQ." + parts[2] // {"root":"","put":[""]}

	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no subcommand", "", []string{"token"}, 2, "usage: moq token generate"},
		{"unknown subcommand", "", []string{"token", "frob"}, 2, `unknown subcommand "frob"`},
		{"unexpected argument", "", []string{"token", "sign", "--key", file("hs.jwk"), "alice"}, 2, `unexpected argument "alice"`},
		{"generate without --out", "", []string{"token", "generate"}, 2, "missing --out"},
		{"generate unknown algorithm", "", []string{"token", "generate", "--algorithm", "ES512", "--out", file("x")}, 1, `unknown --algorithm "ES512": want one of HS256`},
		{"generate HMAC with --public", "", []string{"token", "generate", "--out", file("x"), "--public", file("y")}, 1, "no public half"},
		{"generate over a key", "", []string{"token", "generate", "--out", file("es.jwk")}, 1, "--out " + file("es.jwk") + " already exists"},
		{"generate public over a file", "", []string{"token", "generate", "--algorithm", "EdDSA", "--out", file("new.jwk"), "--public", file("es.pub")}, 1, "--public " + file("es.pub") + " already exists"},
		{"generate one file twice", "", []string{"token", "generate", "--algorithm", "EdDSA", "--out", file("x"), "--public", file("x")}, 1, "must be different files"},
		{"generate bad id", "", []string{"token", "generate", "--out", file("x"), "--id", "a/b"}, 1, "bad --id"},
		{"sign without --key", "", []string{"token", "sign", "--publish", "a"}, 2, "missing --key"},
		{"sign nothing", "", []string{"token", "sign", "--key", file("hs.jwk")}, 1, "would grant nothing"},
		{"sign with a missing key", "", []string{"token", "sign", "--key", file("none.jwk"), "--publish", "a"}, 1, "create one with moq token generate --out"},
		{"sign with a bad key", "", []string{"token", "sign", "--key", file("bad.jwk"), "--publish", "a"}, 1, "needs at least 32"},
		{"sign with a public key", "", []string{"token", "sign", "--key", file("es.pub"), "--publish", "a"}, 1, "sign with the private key"},
		{"sign bad lifetime", "", []string{"token", "sign", "--key", file("hs.jwk"), "--publish", "a", "--expires", "soon"}, 1, `bad --expires "soon"`},
		{"sign negative lifetime", "", []string{"token", "sign", "--key", file("hs.jwk"), "--publish", "a", "--expires", "-1h"}, 1, "bad --expires"},
		{"verify without a key", good, []string{"token", "verify"}, 2, "missing --key or --key-dir"},
		{"verify with both", good, []string{"token", "verify", "--key", file("hs.jwk"), "--key-dir", dir}, 2, "not both"},
		{"verify nothing", " \n", []string{"token", "verify", "--key", file("hs.jwk")}, 1, "no token on stdin"},
		{"verify garbage", "hello", []string{"token", "verify", "--key", file("hs.jwk")}, 1, "token refused: malformed token"},
		{"verify expired", expired, []string{"token", "verify", "--key", file("hs.jwk")}, 1, "token refused: token has expired"},
		{"verify tampered", tampered, []string{"token", "verify", "--key", file("hs.jwk")}, 1, "token refused: token signature does not verify"},
		{"verify with another key", good, []string{"token", "verify", "--key", file("other.jwk")}, 1, "token refused: token signature does not verify"},
		{"verify with another algorithm", good, []string{"token", "verify", "--key", file("es.pub")}, 1, `token refused: token algorithm does not match the key: token is "HS256", key is ES256`},
		{"verify unknown kid", good, []string{"token", "verify", "--key-dir", dir}, 1, "token refused: no key for the token's key id"},
		{"verify key-dir a file", good, []string{"token", "verify", "--key-dir", file("hs.jwk")}, 1, "not a directory"},
		{"verify missing key", good, []string{"token", "verify", "--key", file("none.jwk")}, 1, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			if n := strings.Count(stderr, tt.want); n != 1 {
				t.Errorf("stderr %q mentions %q %d times, want once", stderr, tt.want, n)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	for _, name := range []string{"x", "y", "new.jwk"} {
		if _, err := os.Stat(file(name)); err == nil {
			t.Errorf("a failed generate left %s behind", name)
		}
	}
}

func TestParseLifetime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30m", 30 * time.Minute, true},
		{"12h", 12 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"0", 0, false},
		{"0d", 0, false},
		{"-1h", 0, false},
		{"1.5d", 0, false},
		{"d", 0, false},
		{"99999999d", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, err := parseLifetime(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseLifetime(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
