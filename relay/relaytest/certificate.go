package relaytest

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/selfsign"
)

// WriteCertificate writes a new self-signed certificate for hosts and its
// key as PEM over certFile and keyFile, each by an atomic rename as
// certificate tools do, and returns the certificate's fingerprint.
func WriteCertificate(tb testing.TB, certFile, keyFile string, hosts ...string) string {
	tb.Helper()
	cert, err := selfsign.Generate(hosts, time.Now().Add(-time.Hour), 14*24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		tb.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: cert.Certificate[0]},
		keyFile:  {Type: "PRIVATE KEY", Bytes: key},
	} {
		tmp := file + ".new"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			tb.Fatal(err)
		}
	}
	return selfsign.Fingerprint(cert)
}
