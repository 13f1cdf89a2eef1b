package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a JSON Web Key bound to one algorithm: a shared HMAC secret, an
// asymmetric private key (which can also verify), or the public half of one.
// Its key_ops say what it may do. A Key is immutable and safe for concurrent
// use; fmt prints only its algorithm and id, never its secret.
type Key struct {
	alg    Algorithm
	kid    string
	ops    []string // as in the JWK, for a faithful round trip
	sign   bool
	verify bool

	secret []byte        // oct
	signer crypto.Signer // RSA, EC, OKP private key, or nil
	public crypto.PublicKey
}

// minRSABits is the smallest RSA modulus accepted, the size both reference
// implementations generate.
const minRSABits = 2048

// maxKeyIDLen bounds a key id, which names a file in a KeyDir.
const maxKeyIDLen = 128

// GenerateKey makes a new key for alg with the key id kid, or a random one
// when kid is empty. HMAC secrets are as long as the hash; RSA keys have
// 2048 bits.
func GenerateKey(alg Algorithm, kid string) (*Key, error) {
	if kid == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		kid = hex.EncodeToString(b)
	}
	if err := checkKeyID(kid); err != nil {
		return nil, err
	}
	k := &Key{alg: alg, kid: kid, ops: []string{"sign", "verify"}, sign: true, verify: true}
	var err error
	switch alg {
	case HS256, HS384, HS512:
		k.secret = make([]byte, alg.minSecret())
		_, _ = rand.Read(k.secret)
		return k, nil
	case RS256, RS384, RS512, PS256, PS384, PS512:
		k.signer, err = rsa.GenerateKey(rand.Reader, minRSABits)
	case ES256:
		k.signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ES384:
		k.signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case EdDSA:
		_, k.signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("%w %q", ErrUnsupportedAlgorithm, alg)
	}
	if err != nil {
		return nil, err
	}
	k.public = k.signer.Public()
	return k, nil
}

// Algorithm returns the key's algorithm.
func (k *Key) Algorithm() Algorithm { return k.alg }

// ID returns the key id ("kid"), or "" when the key has none.
func (k *Key) ID() string { return k.kid }

// CanSign reports whether the key may sign: it holds the secret or private
// half and its key_ops include "sign".
func (k *Key) CanSign() bool { return k.sign && k.private() }

// private reports whether the key holds material that must stay secret.
func (k *Key) private() bool { return k.secret != nil || k.signer != nil }

// String describes the key without its secret.
func (k *Key) String() string {
	kind := "public"
	if k.private() {
		kind = "private"
	}
	return fmt.Sprintf("%s %s key %q", k.alg, kind, k.kid)
}

// GoString is String, so %#v does not print the secret either.
func (k *Key) GoString() string { return "token.Key(" + k.String() + ")" }

// Public returns the verifying half of an asymmetric key: the same algorithm
// and id, key_ops ["verify"]. An HMAC key has none (ErrSymmetric).
func (k *Key) Public() (*Key, error) {
	if k.alg.Symmetric() {
		return nil, fmt.Errorf("%w: %s keys are shared secrets", ErrSymmetric, k.alg)
	}
	if !k.verify {
		return nil, fmt.Errorf("%w: its key_ops exclude \"verify\"", ErrCannotVerify)
	}
	return &Key{alg: k.alg, kid: k.kid, ops: []string{"verify"}, verify: true, public: k.public}, nil
}

// ParseKey reads a JWK from JSON or from base64url-encoded JSON (detected
// by the leading "{"). A missing "kty" means "oct"; a missing "key_ops"
// means sign and verify. The key is checked: its "alg" must suit its type
// and curve, an HMAC secret must be at least as long as the hash, an RSA
// modulus at least 2048 bits, and a private key must match its public half.
func ParseKey(data []byte) (*Key, error) {
	data = bytes.TrimSpace(data)
	if !bytes.HasPrefix(data, []byte("{")) {
		decoded, err := decodeBase64(string(data))
		if err != nil {
			return nil, fmt.Errorf("%w: neither JSON nor base64url-encoded JSON", ErrInvalidKey)
		}
		data = decoded
	}
	var j jwk
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	k, err := j.key()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return k, nil
}

// LoadKey reads a key file written by WriteFile, by the reference tools or
// by hand (see ParseKey).
func LoadKey(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// MarshalJSON encodes the key as a JWK, with its secret or private half.
func (k *Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.jwk()) }

// Encode returns the key as base64url-encoded JWK JSON, the reference key
// file format.
func (k *Key) Encode() (string, error) {
	data, err := k.MarshalJSON()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(data), nil
}

// WriteFile writes Encode's form to a new file; it never replaces an
// existing one (fs.ErrExist). A key with a secret or private half is
// readable by its owner only.
func (k *Key) WriteFile(path string) error {
	data, err := k.Encode()
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o644)
	if k.private() {
		mode = 0o600
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

// Sign returns a compact JWT carrying the claims, with the key's algorithm
// and id in its header. IssuedAt defaults to now. Claims that grant nothing
// are refused (ErrUseless).
func (k *Key) Sign(c Claims) (string, error) {
	if !k.CanSign() {
		if !k.private() {
			return "", fmt.Errorf("%w: %s is a public key", ErrCannotSign, k)
		}
		return "", fmt.Errorf("%w: its key_ops exclude \"sign\"", ErrCannotSign)
	}
	if err := c.Validate(); err != nil {
		return "", err
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	var key any = k.signer
	if k.secret != nil {
		key = k.secret
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.alg), Key: key}, opts)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// maxTokenLen bounds the tokens Verify reads.
const maxTokenLen = 16 << 10

// Verify checks a compact JWT against the key and returns its claims. The
// token's "alg" must be the key's algorithm (ErrAlgorithm), the signature
// must verify (ErrSignature), "exp" must not have passed (ErrExpired), "nbf"
// must have come (ErrNotYetValid) and the claims must grant something
// (ErrUseless). The token's "kid" is not compared: a single key verifies
// whatever it signed.
func (k *Key) Verify(token string) (Claims, error) {
	if !k.verify {
		return Claims{}, fmt.Errorf("%w: its key_ops exclude \"verify\"", ErrCannotVerify)
	}
	h, err := parseHeader(token)
	if err != nil {
		return Claims{}, err
	}
	if h.Alg != string(k.alg) {
		return Claims{}, fmt.Errorf("%w: token is %q, key is %s", ErrAlgorithm, h.Alg, k.alg)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(k.alg)})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var key any = k.public
	if k.secret != nil {
		key = k.secret
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return Claims{}, ErrSignature
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	now := time.Now()
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.Expires.UTC().Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && now.Before(c.NotBefore) {
		return Claims{}, fmt.Errorf("%w: not before %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if err := c.Validate(); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// header is the part of a JWS header read before the signature is checked.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// parseHeader decodes a compact JWS's header without verifying anything.
func parseHeader(token string) (header, error) {
	var h header
	if len(token) > maxTokenLen {
		return h, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxTokenLen)
	}
	enc, _, ok := strings.Cut(token, ".")
	if !ok || strings.Count(token, ".") != 2 {
		return h, fmt.Errorf("%w: not a compact JWS (header.payload.signature)", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return h, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return h, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	return h, nil
}

// checkKeyID accepts the key ids both reference implementations accept:
// 1 to 128 ASCII letters, digits, '-' and '_', safe in file names and URLs.
func checkKeyID(kid string) error {
	if kid == "" || len(kid) > maxKeyIDLen {
		return fmt.Errorf("key id must have 1 to %d characters", maxKeyIDLen)
	}
	for _, c := range []byte(kid) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("key id %q may contain only letters, digits, '-' and '_'", kid)
		}
	}
	return nil
}

// jwk is a key's JSON form. Binary fields are base64url strings.
type jwk struct {
	Kty    string    `json:"kty,omitempty"`
	Alg    string    `json:"alg"`
	Kid    string    `json:"kid,omitempty"`
	KeyOps []string  `json:"key_ops,omitempty"`
	Crv    string    `json:"crv,omitempty"`
	K      string    `json:"k,omitempty"`
	N      string    `json:"n,omitempty"`
	E      string    `json:"e,omitempty"`
	X      string    `json:"x,omitempty"`
	Y      string    `json:"y,omitempty"`
	D      string    `json:"d,omitempty"`
	P      string    `json:"p,omitempty"`
	Q      string    `json:"q,omitempty"`
	Dp     string    `json:"dp,omitempty"`
	Dq     string    `json:"dq,omitempty"`
	Qi     string    `json:"qi,omitempty"`
	Oth    any       `json:"oth,omitempty"`
	Scope  *struct{} `json:"scope,omitempty"`
}

var b64 = base64.RawURLEncoding

func (k *Key) jwk() jwk {
	j := jwk{Kty: k.alg.kty(), Alg: string(k.alg), Kid: k.kid, KeyOps: k.ops}
	switch pub := k.public.(type) {
	case nil:
		j.K = b64.EncodeToString(k.secret)
	case *rsa.PublicKey:
		j.N, j.E = b64.EncodeToString(pub.N.Bytes()), b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
		if priv, ok := k.signer.(*rsa.PrivateKey); ok {
			enc := func(i *big.Int) string { return b64.EncodeToString(i.Bytes()) }
			j.D, j.P, j.Q = enc(priv.D), enc(priv.Primes[0]), enc(priv.Primes[1])
			j.Dp, j.Dq, j.Qi = enc(priv.Precomputed.Dp), enc(priv.Precomputed.Dq), enc(priv.Precomputed.Qinv)
		}
	case *ecdsa.PublicKey:
		j.Crv = pub.Curve.Params().Name
		point, _ := pub.Bytes() // 0x04 || X || Y
		size := (len(point) - 1) / 2
		j.X, j.Y = b64.EncodeToString(point[1:1+size]), b64.EncodeToString(point[1+size:])
		if priv, ok := k.signer.(*ecdsa.PrivateKey); ok {
			d, _ := priv.Bytes()
			j.D = b64.EncodeToString(d)
		}
	case ed25519.PublicKey:
		j.Crv, j.X = "Ed25519", b64.EncodeToString(pub)
		if priv, ok := k.signer.(ed25519.PrivateKey); ok {
			j.D = b64.EncodeToString(priv.Seed())
		}
	}
	return j
}

// key validates the JWK and builds the Key.
func (j *jwk) key() (*Key, error) {
	if j.Scope != nil {
		return nil, errors.New(`keys with a "scope" are not supported`)
	}
	alg := Algorithm(j.Alg)
	if j.Alg == "" {
		return nil, errors.New(`"alg" is missing`)
	}
	if alg.kty() == "" {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedAlgorithm, j.Alg)
	}
	kty := j.Kty
	if kty == "" {
		kty = "oct" // keys from before "kty" was written
	}
	if kty != alg.kty() {
		return nil, fmt.Errorf("algorithm %s needs a %q key, not %q", alg, alg.kty(), kty)
	}
	k := &Key{alg: alg, kid: j.Kid, ops: j.KeyOps}
	if j.Kid != "" {
		if err := checkKeyID(j.Kid); err != nil {
			return nil, err
		}
	}
	if j.KeyOps == nil {
		k.ops = []string{"sign", "verify"}
	}
	if len(k.ops) == 0 {
		return nil, errors.New(`"key_ops" is empty`)
	}
	for _, op := range k.ops {
		switch op {
		case "sign":
			k.sign = true
		case "verify":
			k.verify = true
		case "encrypt", "decrypt":
		default:
			return nil, fmt.Errorf("unknown key operation %q", op)
		}
	}
	var err error
	switch kty {
	case "oct":
		err = j.oct(k)
	case "RSA":
		err = j.rsa(k)
	case "EC":
		err = j.ec(k)
	case "OKP":
		err = j.okp(k)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (j *jwk) oct(k *Key) error {
	secret, err := field("k", j.K)
	if err != nil {
		return err
	}
	if need := k.alg.minSecret(); len(secret) < need {
		return fmt.Errorf("%s secret has %d bytes, needs at least %d", k.alg, len(secret), need)
	}
	k.secret = secret
	return nil
}

func (j *jwk) rsa(k *Key) error {
	if j.Oth != nil {
		return errors.New("multi-prime RSA keys are not supported")
	}
	n, err := bigField("n", j.N)
	if err != nil {
		return err
	}
	e, err := bigField("e", j.E)
	if err != nil {
		return err
	}
	if n.BitLen() < minRSABits {
		return fmt.Errorf("RSA modulus has %d bits, needs at least %d", n.BitLen(), minRSABits)
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return errors.New("RSA public exponent is invalid")
	}
	pub := &rsa.PublicKey{N: n, E: int(e.Int64())}
	k.public = pub
	private := []string{j.D, j.P, j.Q, j.Dp, j.Dq, j.Qi}
	present := 0
	for _, f := range private {
		if f != "" {
			present++
		}
	}
	switch present {
	case 0:
		return nil
	case len(private):
	default:
		return errors.New("an RSA private key needs all of d, p, q, dp, dq and qi")
	}
	var ints [6]*big.Int
	for i, name := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if ints[i], err = bigField(name, private[i]); err != nil {
			return err
		}
	}
	priv := &rsa.PrivateKey{PublicKey: *pub, D: ints[0], Primes: []*big.Int{ints[1], ints[2]}}
	if err := priv.Validate(); err != nil {
		return fmt.Errorf("RSA private key: %v", err)
	}
	priv.Precompute()
	pre := priv.Precomputed
	if pre.Dp.Cmp(ints[3]) != 0 || pre.Dq.Cmp(ints[4]) != 0 || pre.Qinv.Cmp(ints[5]) != 0 {
		return errors.New("RSA private key: dp, dq or qi do not match d, p and q")
	}
	k.signer = priv
	return nil
}

func (j *jwk) ec(k *Key) error {
	curve, name := elliptic.P256(), "P-256"
	if k.alg == ES384 {
		curve, name = elliptic.P384(), "P-384"
	}
	if j.Crv != name {
		return fmt.Errorf("algorithm %s needs curve %s, not %q", k.alg, name, j.Crv)
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := field("x", j.X)
	if err != nil {
		return err
	}
	y, err := field("y", j.Y)
	if err != nil {
		return err
	}
	if len(x) != size || len(y) != size {
		return fmt.Errorf("%s coordinates must have %d bytes", name, size)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, slices.Concat([]byte{4}, x, y))
	if err != nil {
		return fmt.Errorf("%s public key: %v", name, err)
	}
	k.public = pub
	if j.D == "" {
		return nil
	}
	d, err := field("d", j.D)
	if err != nil {
		return err
	}
	priv, err := ecdsa.ParseRawPrivateKey(curve, d)
	if err != nil {
		return fmt.Errorf("%s private key: %v", name, err)
	}
	if !priv.PublicKey.Equal(pub) {
		return fmt.Errorf("%s private key does not match x and y", name)
	}
	k.signer = priv
	return nil
}

func (j *jwk) okp(k *Key) error {
	if j.Crv != "Ed25519" {
		return fmt.Errorf("EdDSA needs curve Ed25519, not %q", j.Crv)
	}
	x, err := field("x", j.X)
	if err != nil {
		return err
	}
	if len(x) != ed25519.PublicKeySize {
		return fmt.Errorf("Ed25519 public key must have %d bytes", ed25519.PublicKeySize)
	}
	k.public = ed25519.PublicKey(x)
	if j.D == "" {
		return nil
	}
	seed, err := field("d", j.D)
	if err != nil {
		return err
	}
	if len(seed) != ed25519.SeedSize {
		return fmt.Errorf("Ed25519 private key must have %d bytes", ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), x) {
		return errors.New("Ed25519 private key does not match x")
	}
	k.signer = priv
	return nil
}

// field decodes a required base64url field.
func field(name, value string) ([]byte, error) {
	if value == "" {
		return nil, fmt.Errorf("%q is missing", name)
	}
	b, err := decodeBase64(value)
	if err != nil {
		return nil, fmt.Errorf("%q is not base64url", name)
	}
	return b, nil
}

func bigField(name, value string) (*big.Int, error) {
	b, err := field(name, value)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// decodeBase64 accepts base64url with or without padding, and standard
// base64, as both reference implementations do.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}
