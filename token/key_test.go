package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKeys caches one generated key per algorithm and id: RSA generation is slow.
var testKeys sync.Map

func testKey(t testing.TB, alg Algorithm, kid string) *Key {
	t.Helper()
	name := string(alg) + "/" + kid
	if k, ok := testKeys.Load(name); ok {
		return k.(*Key)
	}
	var k *Key
	if alg.kty() == "RSA" && alg != RS256 {
		// Every RSA algorithm shares the RS256 key pair: generating one is slow.
		j := jwkFields(t, testKey(t, RS256, kid))
		j["alg"] = string(alg)
		data, _ := json.Marshal(j)
		var err error
		if k, err = ParseKey(data); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if k, err = GenerateKey(alg, kid); err != nil {
			t.Fatal(err)
		}
	}
	k2, _ := testKeys.LoadOrStore(name, k)
	return k2.(*Key)
}

// reparse round-trips a key through its JSON form.
func reparse(t testing.TB, k *Key) *Key {
	t.Helper()
	data, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseKey(data)
	if err != nil {
		t.Fatalf("ParseKey(%s): %v", data, err)
	}
	return out
}

func TestSignVerifyEveryAlgorithm(t *testing.T) {
	claims := Claims{
		Root: "demo", Publish: []string{"alice"}, Subscribe: []string{"", "room"}, Cluster: true,
		Expires: time.Now().Add(time.Hour).Truncate(time.Second),
	}
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			k := testKey(t, alg, "")
			if k.Algorithm() != alg || len(k.ID()) != 16 {
				t.Fatalf("generated %v with id %q", k.Algorithm(), k.ID())
			}
			tok, err := k.Sign(claims)
			if err != nil {
				t.Fatal(err)
			}
			h, err := parseHeader(tok)
			if err != nil || h.Alg != string(alg) || h.Kid != k.ID() {
				t.Fatalf("header %+v, %v", h, err)
			}
			verifiers := map[string]*Key{"itself": k, "reloaded": reparse(t, k)}
			if alg.Symmetric() {
				if _, err := k.Public(); !errors.Is(err, ErrSymmetric) {
					t.Errorf("Public() = %v, want ErrSymmetric", err)
				}
			} else {
				pub, err := k.Public()
				if err != nil {
					t.Fatal(err)
				}
				verifiers["public"] = pub
				verifiers["public reloaded"] = reparse(t, pub)
			}
			for name, v := range verifiers {
				got, err := v.Verify(tok)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				want := claims
				want.IssuedAt = got.IssuedAt
				if !equalClaims(got, want) || got.IssuedAt.IsZero() {
					t.Errorf("%s: got %+v, want %+v with an iat", name, got, want)
				}
			}
			// The reloaded private key signs tokens the original verifies.
			tok2, err := reparse(t, k).Sign(claims)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.Verify(tok2); err != nil {
				t.Errorf("token of the reloaded key: %v", err)
			}
		})
	}
}

func TestKeyCapabilities(t *testing.T) {
	claims := Claims{Subscribe: []string{""}}
	es := testKey(t, ES256, "")
	pub, err := es.Public()
	if err != nil {
		t.Fatal(err)
	}
	hs := testKey(t, HS256, "")
	withOps := func(k *Key, ops string) *Key {
		var j map[string]any
		data, _ := json.Marshal(k)
		_ = json.Unmarshal(data, &j)
		j["key_ops"] = strings.Split(ops, ",")
		data, _ = json.Marshal(j)
		out, err := ParseKey(data)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name              string
		key               *Key
		signErr, verifErr error
	}{
		{"private", es, nil, nil},
		{"public", pub, ErrCannotSign, nil},
		{"verify only", withOps(hs, "verify"), ErrCannotSign, nil},
		{"sign only", withOps(hs, "sign"), nil, ErrCannotVerify},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := tt.key.Sign(claims)
			if !errors.Is(err, tt.signErr) {
				t.Fatalf("Sign: %v, want %v", err, tt.signErr)
			}
			if err != nil {
				if tok, err = testKey(t, tt.key.Algorithm(), "").Sign(claims); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := tt.key.Verify(tok); !errors.Is(err, tt.verifErr) {
				t.Errorf("Verify: %v, want %v", err, tt.verifErr)
			}
		})
	}
	if _, err := withOps(es, "sign").Public(); !errors.Is(err, ErrCannotVerify) {
		t.Errorf("Public of a sign-only key: %v, want ErrCannotVerify", err)
	}
	if _, err := es.Sign(Claims{Root: "demo"}); !errors.Is(err, ErrUseless) {
		t.Errorf("Sign(useless) = %v, want ErrUseless", err)
	}
}

func TestGenerateKey(t *testing.T) {
	if k, err := GenerateKey(HS512, "my-key_1"); err != nil || k.ID() != "my-key_1" || len(k.secret) != 64 {
		t.Errorf("GenerateKey(HS512, my-key_1) = %v, %v", k, err)
	}
	if _, err := GenerateKey("HS1", ""); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("GenerateKey(HS1) = %v, want ErrUnsupportedAlgorithm", err)
	}
	if _, err := GenerateKey(HS256, "../x"); err == nil {
		t.Error("GenerateKey accepted the key id ../x")
	}
	for _, s := range []string{"es256", "EdDSA", "eddsa", "PS512"} {
		if _, err := ParseAlgorithm(s); err != nil {
			t.Errorf("ParseAlgorithm(%q): %v", s, err)
		}
	}
	for _, s := range []string{"none", "", "ES512", "RSA"} {
		if _, err := ParseAlgorithm(s); !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("ParseAlgorithm(%q) = %v, want ErrUnsupportedAlgorithm", s, err)
		}
	}
}

// jwkFields returns k's JWK as a map, to derive variants from.
func jwkFields(t testing.TB, k *Key) map[string]any {
	t.Helper()
	data, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseKey(t *testing.T) {
	// A 32-byte secret from the reference implementation's tests.
	const secret = "Fp8kipWUJeUFqeSqWym_tRC_tyI8z-QpqopIGrbrD68"
	es256 := jwkFields(t, testKey(t, ES256, ""))
	es384 := jwkFields(t, testKey(t, ES384, ""))
	otherES := jwkFields(t, testKey(t, ES256, "other"))
	ed := jwkFields(t, testKey(t, EdDSA, ""))
	otherEd := jwkFields(t, testKey(t, EdDSA, "other"))
	rs := jwkFields(t, testKey(t, RS256, ""))
	with := func(base map[string]any, kv ...any) string {
		m := make(map[string]any, len(base))
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		data, _ := json.Marshal(m)
		return string(data)
	}
	legacy := `{"alg":"HS256","key_ops":["sign","verify"],"k":"` + secret + `"}`
	tests := []struct {
		name    string
		in      string
		wantErr string // "" when the key must parse
	}{
		{"legacy oct without kty", legacy, ""},
		{"base64url JSON", base64.RawURLEncoding.EncodeToString([]byte(legacy)), ""},
		{"padded base64url JSON with spaces", "  " + base64.URLEncoding.EncodeToString([]byte(legacy)) + "\n", ""},
		{"padded secret", `{"kty":"oct","alg":"HS256","k":"` + secret + `="}`, ""},
		{"standard base64 secret", `{"kty":"oct","alg":"HS256","k":"` + strings.NewReplacer("-", "+", "_", "/").Replace(secret) + `"}`, ""},
		{"no key_ops", `{"kty":"oct","alg":"HS256","k":"` + secret + `","kid":"no-ops"}`, ""},
		{"extra members", with(ed, "use", "sig", "x5c", []string{}), ""},
		{"public EC", with(es256, "d", nil, "key_ops", []string{"verify"}), ""},
		{"public RSA", with(rs, "d", nil, "p", nil, "q", nil, "dp", nil, "dq", nil, "qi", nil), ""},

		{"garbage", "not a key", "neither JSON nor base64url"},
		{"bad JSON", "{", "unexpected end"},
		{"no alg", `{"kty":"oct","k":"` + secret + `"}`, `"alg" is missing`},
		{"alg none", `{"kty":"oct","alg":"none","k":"` + secret + `"}`, "unsupported algorithm"},
		{"ES512", with(es256, "alg", "ES512"), "unsupported algorithm"},
		{"unknown kty", with(es256, "kty", "XYZ"), `needs a "EC" key`},
		{"RSA alg on oct", `{"kty":"oct","alg":"RS256","k":"` + secret + `"}`, `needs a "RSA" key`},
		{"no secret", `{"kty":"oct","alg":"HS256"}`, `"k" is missing`},
		{"short secret", `{"kty":"oct","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAA"}`, "needs at least 32"},
		{"HS512 with a 32-byte secret", `{"kty":"oct","alg":"HS512","k":"` + secret + `"}`, "needs at least 64"},
		{"secret not base64", `{"kty":"oct","alg":"HS256","k":"*** not base64 ***"}`, "not base64url"},
		{"empty key_ops", `{"kty":"oct","alg":"HS256","k":"` + secret + `","key_ops":[]}`, `"key_ops" is empty`},
		{"unknown key op", `{"kty":"oct","alg":"HS256","k":"` + secret + `","key_ops":["sign","wrapKey"]}`, "unknown key operation"},
		{"bad kid", `{"kty":"oct","alg":"HS256","k":"` + secret + `","kid":"../../etc/passwd"}`, "may contain only"},
		{"long kid", `{"kty":"oct","alg":"HS256","k":"` + secret + `","kid":"` + strings.Repeat("a", 129) + `"}`, "1 to 128"},
		{"scope", `{"kty":"oct","alg":"HS256","k":"` + secret + `","scope":{"put":["a"]}}`, `"scope"`},
		{"ES256 on P-384", with(es384, "alg", "ES256"), "needs curve P-256"},
		{"EC point off the curve", with(es256, "d", nil, "y", es256["x"]), "P-256 public key"},
		{"EC short coordinate", with(es256, "x", "AAAA"), "must have 32 bytes"},
		{"EC private key of another point", with(es256, "x", otherES["x"], "y", otherES["y"]), "does not match x and y"},
		{"Ed25519 private key of another public key", with(ed, "x", otherEd["x"]), "does not match x"},
		{"Ed25519 short seed", with(ed, "d", "AAAA"), "must have 32 bytes"},
		{"X25519", with(ed, "crv", "X25519"), "needs curve Ed25519"},
		{"RSA partial private key", with(rs, "dp", nil), "needs all of"},
		{"RSA wrong CRT value", with(rs, "qi", rs["dp"]), "do not match"},
		{"RSA wrong d", with(rs, "d", rs["dp"]), "RSA private key"},
		{"RSA small modulus", with(rs, "d", nil, "p", nil, "q", nil, "dp", nil, "dq", nil, "qi", nil, "n", base64.RawURLEncoding.EncodeToString(make([]byte, 128))), "needs at least 2048"},
		{"RSA even exponent", with(rs, "d", nil, "p", nil, "q", nil, "dp", nil, "dq", nil, "qi", nil, "e", "AQAA"), "exponent"},
		{"RSA multi-prime", with(rs, "oth", []any{map[string]string{"r": "AQ"}}), "multi-prime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				reparse(t, k)
				return
			}
			if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseKey = %v, want ErrInvalidKey mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestLegacyKeyDefaults(t *testing.T) {
	k, err := ParseKey([]byte(`{"alg":"HS256","k":"Fp8kipWUJeUFqeSqWym_tRC_tyI8z-QpqopIGrbrD68"}`))
	if err != nil {
		t.Fatal(err)
	}
	m := jwkFields(t, k)
	if m["kty"] != "oct" || fmt.Sprint(m["key_ops"]) != "[sign verify]" {
		t.Errorf("a key without kty and key_ops is written as %v", m)
	}
	if _, err := k.Sign(Claims{Publish: []string{""}}); err != nil {
		t.Errorf("a key without key_ops cannot sign: %v", err)
	}
}

func TestWriteFileAndLoadKey(t *testing.T) {
	dir := t.TempDir()
	priv := testKey(t, EdDSA, "")
	pub, _ := priv.Public()
	tests := []struct {
		name string
		key  *Key
		mode fs.FileMode
	}{
		{"private", priv, 0o600},
		{"public", pub, 0o644},
		{"secret", testKey(t, HS256, ""), 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".jwk")
			if err := tt.key.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			// The umask may clear bits but never adds any.
			if info.Mode().Perm()&^tt.mode != 0 {
				t.Errorf("mode %v, want at most %v", info.Mode().Perm(), tt.mode)
			}
			data, _ := os.ReadFile(path)
			if strings.Contains(string(data), "{") {
				t.Errorf("file is not base64url: %s", data)
			}
			loaded, err := LoadKey(path)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(loaded)
			b, _ := json.Marshal(tt.key)
			if string(a) != string(b) {
				t.Errorf("loaded %s, wrote %s", a, b)
			}
			if err := tt.key.WriteFile(path); !errors.Is(err, fs.ErrExist) {
				t.Errorf("second WriteFile = %v, want fs.ErrExist", err)
			}
		})
	}
	if _, err := LoadKey(filepath.Join(dir, "missing.jwk")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKey(missing) = %v", err)
	}
	bad := filepath.Join(dir, "bad.jwk")
	_ = os.WriteFile(bad, []byte("{}"), 0o600)
	if _, err := LoadKey(bad); !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadKey(bad) = %v, want ErrInvalidKey naming the file", err)
	}
}

func TestKeyPrintsNoSecret(t *testing.T) {
	for _, alg := range []Algorithm{HS256, ES256, EdDSA} {
		k := testKey(t, alg, "")
		m := jwkFields(t, k)
		secret, _ := m["k"].(string)
		if secret == "" {
			secret = m["d"].(string)
		}
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(format, k)
			if strings.Contains(out, secret[:10]) || !strings.Contains(out, k.ID()) {
				t.Errorf("%s of a %s key = %q", format, alg, out)
			}
		}
	}
}
