// Package tlsfiletest makes certificates for tests: a CA of its own, and
// key pairs it signs for 127.0.0.1 and localhost, written as PEM files.
package tlsfiletest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority of a test.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is its certificate, PEM.
	File string
}

// NewCA makes a CA named name and writes its certificate to a file of a
// temporary directory.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Cert: cert, key: key, File: filepath.Join(t.TempDir(), "ca.pem")}
	WriteFile(t, ca.File, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// Pool is a pool of the CA's certificate alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue makes a key pair the CA signs for name, 127.0.0.1 and localhost,
// good for a server and a client, and returns them PEM.
func (ca *CA) Issue(t testing.TB, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// IssueFiles is Issue written to cert.pem and key.pem of a temporary
// directory, whose paths it returns.
func (ca *CA) IssueFiles(t testing.TB, name string) (certFile, keyFile string) {
	t.Helper()
	c, k := ca.Issue(t, name)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	WriteFile(t, certFile, c)
	WriteFile(t, keyFile, k)
	return certFile, keyFile
}

// WriteFile replaces file with data, as certbot or cert-manager renew a
// certificate (a new file renamed over the old one).
func WriteFile(t testing.TB, file string, data []byte) {
	t.Helper()
	tmp := file + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// Renew is the CA's new pair for name written over certFile and keyFile;
// it returns the new certificate. Their modification time is set a
// minute past the old one, so that the change shows on a file system of
// coarse timestamps too.
func (ca *CA) Renew(t testing.TB, name, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	c, k := ca.Issue(t, name)
	Replace(t, certFile, c)
	Replace(t, keyFile, k)
	b, _ := pem.Decode(c)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// Replace writes data over file (WriteFile) with a modification time a
// minute past its old one.
func Replace(t testing.TB, file string, data []byte) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, file, data)
	m := fi.ModTime().Add(time.Minute)
	if err := os.Chtimes(file, m, m); err != nil {
		t.Fatal(err)
	}
}
