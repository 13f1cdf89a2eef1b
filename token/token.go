// Package token signs and verifies the JWT access tokens of moq-token, the
// scheme the reference moq relay and its @moq/token package use.
//
// A token's Claims grant publish ("put") and subscribe ("get") path prefixes
// below a root. A relay verifies the token a client presents with a Key, or
// with a KeyDir that picks the key by the token's "kid" header, and narrows
// the claims to the path the client connected to with Claims.Scope.
//
// Keys are JSON Web Keys, stored as JSON or as base64url-encoded JSON. Every
// key is bound to one algorithm: HS256/384/512 (a shared secret), RS256/384/512
// and PS256/384/512 (RSA), ES256/ES384 (P-256/P-384) or EdDSA (Ed25519). A
// token is accepted only when its header names the verifying key's algorithm,
// so "none" and algorithm-confusion tokens are refused.
package token

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by this package; match them with errors.Is.
var (
	// ErrUseless: the claims grant neither publish nor subscribe.
	ErrUseless = errors.New("token grants neither publish nor subscribe")
	// ErrMalformed: the token is not a compact JWS carrying valid claims.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm: the token's "alg" header is not the verifying key's algorithm.
	ErrAlgorithm = errors.New("token algorithm does not match the key")
	// ErrSignature: the signature does not verify (tampered, or another key).
	ErrSignature = errors.New("token signature does not verify")
	// ErrExpired: the token's "exp" time has passed.
	ErrExpired = errors.New("token has expired")
	// ErrNotYetValid: the token's "nbf" time has not come yet.
	ErrNotYetValid = errors.New("token is not valid yet")
	// ErrNoKeyID: a KeyDir got a token without a "kid" header.
	ErrNoKeyID = errors.New("token has no key id (kid)")
	// ErrKeyNotFound: a KeyDir has no key for the token's "kid".
	ErrKeyNotFound = errors.New("no key for the token's key id")
	// ErrInvalidKey: a JWK is malformed, inconsistent or too weak.
	ErrInvalidKey = errors.New("invalid key")
	// ErrUnsupportedAlgorithm: the algorithm is not one this package supports.
	ErrUnsupportedAlgorithm = errors.New("unsupported algorithm")
	// ErrCannotSign: the key has no private half or its key_ops exclude "sign".
	ErrCannotSign = errors.New("key cannot sign")
	// ErrCannotVerify: the key's key_ops exclude "verify".
	ErrCannotVerify = errors.New("key cannot verify")
	// ErrSymmetric: an HMAC key has no public half to hand out.
	ErrSymmetric = errors.New("symmetric key has no public half")
	// ErrRootMismatch: the connection path and the token root do not overlap.
	ErrRootMismatch = errors.New("path does not overlap the token root")
	// ErrNoAccess: the paths overlap but no grant reaches the connection path.
	ErrNoAccess = errors.New("token grants nothing under the path")
)

// Algorithm is a JWS signature algorithm ("alg").
type Algorithm string

// The supported algorithms.
const (
	HS256 Algorithm = "HS256" // HMAC with SHA-256
	HS384 Algorithm = "HS384" // HMAC with SHA-384
	HS512 Algorithm = "HS512" // HMAC with SHA-512
	RS256 Algorithm = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
	RS384 Algorithm = "RS384" // RSASSA-PKCS1-v1_5 with SHA-384
	RS512 Algorithm = "RS512" // RSASSA-PKCS1-v1_5 with SHA-512
	PS256 Algorithm = "PS256" // RSASSA-PSS with SHA-256
	PS384 Algorithm = "PS384" // RSASSA-PSS with SHA-384
	PS512 Algorithm = "PS512" // RSASSA-PSS with SHA-512
	ES256 Algorithm = "ES256" // ECDSA on P-256 with SHA-256
	ES384 Algorithm = "ES384" // ECDSA on P-384 with SHA-384
	EdDSA Algorithm = "EdDSA" // Ed25519
)

var algorithms = []Algorithm{HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA}

// Algorithms lists the supported algorithms.
func Algorithms() []Algorithm { return append([]Algorithm(nil), algorithms...) }

// ParseAlgorithm returns the algorithm named s, ignoring case ("es256" is ES256).
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range algorithms {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrUnsupportedAlgorithm, s)
}

// kty is the JWK key type the algorithm uses.
func (a Algorithm) kty() string {
	switch a {
	case HS256, HS384, HS512:
		return "oct"
	case RS256, RS384, RS512, PS256, PS384, PS512:
		return "RSA"
	case ES256, ES384:
		return "EC"
	case EdDSA:
		return "OKP"
	}
	return ""
}

// Symmetric reports whether a signs and verifies with one shared secret (HS*).
func (a Algorithm) Symmetric() bool { return a.kty() == "oct" }

// minSecret is the shortest HMAC secret accepted for a: the hash size (RFC
// 7518 section 3.2), and never under the 32 bytes @moq/token requires.
func (a Algorithm) minSecret() int {
	switch a {
	case HS384:
		return 48
	case HS512:
		return 64
	}
	return 32
}
