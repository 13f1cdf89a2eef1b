// Package selfsign creates short-lived self-signed certificates for
// development servers, and client TLS configs that pin such a certificate
// by its SHA-256 fingerprint, the way browsers do with WebTransport's
// serverCertificateHashes.
package selfsign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// MaxBrowserValidity is the longest validity period (NotAfter - NotBefore)
// Chromium accepts for a certificate pinned with serverCertificateHashes.
const MaxBrowserValidity = 14 * 24 * time.Hour

var (
	// ErrNoHosts is returned by Generate when no host names are given.
	ErrNoHosts = errors.New("selfsign: no hosts")
	// ErrValidity is returned by Generate for a non-positive validity.
	ErrValidity = errors.New("selfsign: validity must be positive")
	// ErrFingerprintFormat is returned for a fingerprint that is not 32 bytes of hex.
	ErrFingerprintFormat = errors.New("selfsign: fingerprint must be 64 hex digits")
	// ErrFingerprintMismatch is returned by the verifier of TrustFingerprint
	// when the server presents a different certificate.
	ErrFingerprintMismatch = errors.New("selfsign: certificate fingerprint mismatch")
)

// Generate creates a self-signed ECDSA P-256 certificate valid from notBefore
// (truncated to whole seconds, as X.509 encodes it) for exactly validity,
// with a subject alternative name for every host: IP addresses as IP SANs,
// anything else as a DNS name. The key usages allow server and client
// authentication.
func Generate(hosts []string, notBefore time.Time, validity time.Duration) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, ErrNoHosts
	}
	if validity <= 0 {
		return tls.Certificate{}, ErrValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("selfsign: generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("selfsign: generating serial: %w", err)
	}
	notBefore = notBefore.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("selfsign: creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("selfsign: parsing certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Default creates the development certificate: hosts localhost, 127.0.0.1
// and ::1, valid from a day before now for [MaxBrowserValidity], so browsers
// accept it through serverCertificateHashes despite small clock skews.
func Default(now time.Time) (tls.Certificate, error) {
	return Generate([]string{"localhost", "127.0.0.1", "::1"}, now.Add(-24*time.Hour), MaxBrowserValidity)
}

// Fingerprint returns the SHA-256 of the leaf certificate's DER encoding as 64
// lowercase hex digits, or "" when cert holds no certificate.
func Fingerprint(cert tls.Certificate) string {
	if len(cert.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return hex.EncodeToString(sum[:])
}

// ParseFingerprint decodes a SHA-256 fingerprint written as 64 hex digits in
// either case, optionally separated by colons ("AB:CD:...").
func ParseFingerprint(s string) ([sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	clean := strings.ReplaceAll(s, ":", "")
	if len(clean) != 2*sha256.Size {
		return fp, fmt.Errorf("%w: got %d digits", ErrFingerprintFormat, len(clean))
	}
	if _, err := hex.Decode(fp[:], []byte(clean)); err != nil {
		return fp, fmt.Errorf("%w: %w", ErrFingerprintFormat, err)
	}
	return fp, nil
}

// TrustFingerprint returns a client TLS config that accepts exactly the server
// certificate whose SHA-256 is hexSHA256 (see [ParseFingerprint] for the
// format). Chain and host name verification are replaced by the fingerprint
// comparison; any other certificate fails the handshake with an error
// wrapping [ErrFingerprintMismatch] that names both fingerprints.
func TrustFingerprint(hexSHA256 string) (*tls.Config, error) {
	want, err := ParseFingerprint(hexSHA256)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		// Verification is done by VerifyPeerCertificate below.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if len(rawCerts) == 0 {
				return fmt.Errorf("%w: server sent no certificate, want %x", ErrFingerprintMismatch, want)
			}
			got := sha256.Sum256(rawCerts[0])
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				return fmt.Errorf("%w: server certificate %x, want %x", ErrFingerprintMismatch, got, want)
			}
			return nil
		},
	}, nil
}
