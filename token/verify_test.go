package token

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// hmacToken builds a compact JWS by hand, MACed with secret as HS256 whatever
// the header says.
func hmacToken(t testing.TB, header map[string]any, payload any, secret []byte) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// rawSign signs payload bytes with k, skipping the checks Key.Sign makes.
func rawSign(t testing.TB, k *Key, payload []byte, opts *jose.SignerOptions) string {
	t.Helper()
	var key any = k.signer
	if k.secret != nil {
		key = k.secret
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.alg), Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustSign(t testing.TB, k *Key, c Claims) string {
	t.Helper()
	tok, err := k.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestVerifyRefuses: every way a token must be refused, by the key that
// should have signed it.
func TestVerifyRefuses(t *testing.T) {
	hs := testKey(t, HS256, "")
	es := testKey(t, ES256, "")
	esPub, _ := es.Public()
	rs := testKey(t, RS256, "")
	rsPub, _ := rs.Public()
	edPub, _ := testKey(t, EdDSA, "").Public()
	good := Claims{Root: "demo", Publish: []string{"alice"}}

	// Algorithm confusion: HS256 tokens MACed with the bytes of the public
	// key, in every form a careless verifier might feed to HMAC.
	rsaDER, err := x509.MarshalPKIXPublicKey(rsPub.public)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	rsaJWK, _ := json.Marshal(rsPub)
	rsaFile, _ := rsPub.Encode()
	confused := func(secret []byte) string {
		return hmacToken(t, map[string]any{"alg": "HS256", "typ": "JWT"}, good, secret)
	}

	// Payload swapped under a valid signature.
	valid := mustSign(t, es, good)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64JSON(t, Claims{Root: "", Publish: []string{""}}) + "." + parts[2]
	// One byte of the signature changed.
	sig := []byte(parts[2])
	sig[3] ^= 1
	badSig := parts[0] + "." + parts[1] + "." + string(sig)

	// A key embedded in the header must not be trusted.
	attacker := testKey(t, ES256, "attacker")
	embedded := rawSign(t, attacker, []byte(`{"root":"","put":[""]}`),
		(&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", es.ID()))

	tests := []struct {
		name  string
		key   *Key
		token string
		want  error
	}{
		{"alg none", hs, b64JSON(t, map[string]any{"alg": "none"}) + "." + b64JSON(t, good) + ".", ErrAlgorithm},
		{"alg none with a signature", hs, hmacToken(t, map[string]any{"alg": "none"}, good, hs.secret), ErrAlgorithm},
		{"alg None against an asymmetric key", esPub, hmacToken(t, map[string]any{"alg": "None"}, good, nil), ErrAlgorithm},
		{"alg missing", hs, hmacToken(t, map[string]any{"typ": "JWT"}, good, hs.secret), ErrAlgorithm},
		{"alg in lower case", hs, hmacToken(t, map[string]any{"alg": "hs256"}, good, hs.secret), ErrAlgorithm},
		{"HS256 keyed with the RSA public key PEM", rsPub, confused(rsaPEM), ErrAlgorithm},
		{"HS256 keyed with the RSA public key DER", rsPub, confused(rsaDER), ErrAlgorithm},
		{"HS256 keyed with the RSA public JWK", rsPub, confused(rsaJWK), ErrAlgorithm},
		{"HS256 keyed with the RSA public key file", rsPub, confused([]byte(rsaFile)), ErrAlgorithm},
		{"HS256 keyed with the Ed25519 public key", edPub, confused(edPub.public.(ed25519.PublicKey)), ErrAlgorithm},
		{"ES384 token for an ES256 key", esPub, mustSign(t, testKey(t, ES384, ""), good), ErrAlgorithm},
		{"tampered payload", esPub, tampered, ErrSignature},
		{"tampered signature", esPub, badSig, ErrSignature},
		{"wrong key, same algorithm", esPub, mustSign(t, attacker, good), ErrSignature},
		{"wrong HMAC secret", hs, mustSign(t, testKey(t, HS256, "other"), good), ErrSignature},
		{"embedded attacker key", esPub, embedded, ErrSignature},
		{"expired", esPub, mustSign(t, es, Claims{Root: "demo", Publish: []string{""}, Expires: time.Now().Add(-time.Minute)}), ErrExpired},
		{"not yet valid", esPub, mustSign(t, es, Claims{Root: "demo", Publish: []string{""}, NotBefore: time.Now().Add(time.Hour)}), ErrNotYetValid},
		{"useless", esPub, rawSign(t, es, []byte(`{"root":"demo"}`), nil), ErrUseless},
		{"useless with empty lists", hs, rawSign(t, hs, []byte(`{"root":"demo","put":[],"get":[]}`), nil), ErrUseless},
		{"claims not JSON", hs, rawSign(t, hs, []byte(`root=demo`), nil), ErrMalformed},
		{"claims of the wrong type", hs, rawSign(t, hs, []byte(`{"root":"demo","put":5}`), nil), ErrMalformed},
		{"two parts", hs, parts[0] + "." + parts[1], ErrMalformed},
		{"four parts", hs, valid + ".x", ErrMalformed},
		{"header not base64", hs, "!!." + parts[1] + "." + parts[2], ErrMalformed},
		{"header not JSON", hs, b64JSON(t, []byte("alg")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"JSON serialization", hs, `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ErrMalformed},
		{"oversized", hs, hmacToken(t, map[string]any{"alg": "HS256"}, Claims{Publish: []string{strings.Repeat("a", maxTokenLen)}}, hs.secret), ErrMalformed},
		{"empty", hs, "", ErrMalformed},
		{"expired and tampered", esPub, parts[0] + "." + b64JSON(t, Claims{Publish: []string{""}, Expires: time.Unix(1, 0)}) + "." + parts[2], ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.key.Verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tt.want)
			}
		})
	}
	if _, err := esPub.Verify(valid); err != nil {
		t.Fatalf("the untampered token: %v", err)
	}
}

func TestKeyDir(t *testing.T) {
	dir := t.TempDir()
	a := testKey(t, ES256, "key-a")
	b := testKey(t, EdDSA, "key-b")
	hs := testKey(t, HS256, "key-h")
	for _, k := range []*Key{a, b} {
		pub, _ := k.Public()
		if err := pub.WriteFile(filepath.Join(dir, k.ID()+".jwk")); err != nil {
			t.Fatal(err)
		}
	}
	if err := hs.WriteFile(filepath.Join(dir, hs.ID()+".jwk")); err != nil {
		t.Fatal(err)
	}
	// A key filed under another key's id.
	if err := os.WriteFile(filepath.Join(dir, "misfiled.jwk"), []byte(mustEncode(t, a)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.jwk"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	noKid, err := GenerateKey(ES256, "x")
	if err != nil {
		t.Fatal(err)
	}
	noKid.kid = ""
	grant := Claims{Root: "r", Subscribe: []string{""}}
	withKid := func(k *Key, kid string) string {
		return rawSign(t, k, claimsBytes(t, grant), (&jose.SignerOptions{}).WithHeader("kid", kid))
	}
	kd, err := LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"ES256 by kid", mustSign(t, a, grant), nil},
		{"EdDSA by kid", mustSign(t, b, grant), nil},
		{"HS256 by kid", mustSign(t, hs, grant), nil},
		{"missing kid", mustSign(t, noKid, grant), ErrNoKeyID},
		{"empty kid", withKid(a, ""), ErrNoKeyID},
		{"unknown kid", withKid(a, "key-z"), ErrKeyNotFound},
		{"kid escaping the directory", withKid(a, "../"+filepath.Base(dir)+"/key-a"), ErrKeyNotFound},
		{"kid with a dot", withKid(a, "key-a.jwk"), ErrKeyNotFound},
		{"kid of another key", withKid(a, "key-b"), ErrAlgorithm},
		{"kid of another key, same algorithm", withKid(testKey(t, ES256, "evil"), "key-a"), ErrSignature},
		{"kid naming a broken file", withKid(a, "broken"), ErrInvalidKey},
		{"kid naming a misfiled key", withKid(a, "misfiled"), nil},
		{"kid not a string", hmacToken(t, map[string]any{"alg": "HS256", "kid": 7}, grant, hs.secret), ErrMalformed},
		{"alg none by kid", hmacToken(t, map[string]any{"alg": "none", "kid": "key-h"}, grant, hs.secret), ErrAlgorithm},
		{"expired by kid", mustSign(t, a, Claims{Publish: []string{""}, Expires: time.Now().Add(-time.Second)}), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := kd.Verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tt.want)
			}
			if err == nil && c.Root != "r" {
				t.Errorf("claims %+v", c)
			}
		})
	}
	// Keys added later are found.
	c := testKey(t, ES384, "key-c")
	if err := c.WriteFile(filepath.Join(dir, "key-c.jwk")); err != nil {
		t.Fatal(err)
	}
	if _, err := kd.Verify(mustSign(t, c, grant)); err != nil {
		t.Errorf("a key added after LoadKeyDir: %v", err)
	}

	if _, err := LoadKeyDir(filepath.Join(dir, "key-a.jwk")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("LoadKeyDir(file) = %v", err)
	}
	if _, err := LoadKeyDir(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadKeyDir(missing) = %v", err)
	}
}

func mustEncode(t testing.TB, k *Key) string {
	t.Helper()
	s, err := k.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claimsBytes(t testing.TB, c Claims) []byte {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzVerify: arbitrary tokens never panic, and one that verifies came from
// the key and grants something.
func FuzzVerify(f *testing.F) {
	k := testKey(f, HS256, "fuzz")
	kd := &KeyDir{dir: f.TempDir()}
	if err := k.WriteFile(filepath.Join(kd.dir, "fuzz.jwk")); err != nil {
		f.Fatal(err)
	}
	f.Add(mustSign(f, k, Claims{Root: "a", Publish: []string{"b"}}))
	f.Add(mustSign(f, k, Claims{Subscribe: []string{""}, Expires: time.Now().Add(-time.Hour)}))
	f.Add(hmacToken(f, map[string]any{"alg": "none"}, Claims{}, nil))
	f.Add("e30.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		for _, v := range []Verifier{k, kd} {
			c, err := v.Verify(token)
			if err == nil && c.Validate() != nil {
				t.Fatalf("accepted useless claims %+v", c)
			}
		}
	})
}

// FuzzParseKey: arbitrary key files never panic, and a key that parses
// round-trips through its JSON form.
func FuzzParseKey(f *testing.F) {
	for _, alg := range []Algorithm{HS256, ES256, EdDSA, RS256} {
		k := testKey(f, alg, "")
		f.Add(mustEncode(f, k))
		data, _ := json.Marshal(k)
		f.Add(string(data))
	}
	f.Add(`{"alg":"HS256","k":"Fp8kipWUJeUFqeSqWym_tRC_tyI8z-QpqopIGrbrD68"}`)
	f.Fuzz(func(t *testing.T, in string) {
		k, err := ParseKey([]byte(in))
		if err != nil {
			return
		}
		data, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseKey(data); err != nil {
			t.Fatalf("%s does not parse again: %v", data, err)
		}
	})
}
