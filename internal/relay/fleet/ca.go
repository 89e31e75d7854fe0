package fleet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	relaystore "github.com/pomdev/pomdev/internal/relay/store"
)

// CAFile is the fleet's CA (its certificate and key, PEM): a secret of the
// store, seeded from this file in a node's state directory when an
// operator gives their own.
const CAFile = "fleet_ca.pem"

// ServerName is the name in every node's certificate, checked by the
// nodes that dial it: the fleet's CA signs nothing else.
const ServerName = "pomdev-fleet"

// authority is the fleet's CA.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func loadAuthority(db *sql.DB, dir string) (*authority, error) {
	data, _, err := relaystore.Secret(db, dir, CAFile, newAuthority)
	if err != nil {
		return nil, err
	}
	return parseAuthority(data)
}

// parseAuthority reads a CA certificate and its key (PEM).
func parseAuthority(data []byte) (*authority, error) {
	var err error
	a := &authority{pool: x509.NewCertPool()}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			if a.cert, err = x509.ParseCertificate(b.Bytes); err != nil {
				return nil, err
			}
		case "EC PRIVATE KEY":
			if a.key, err = x509.ParseECPrivateKey(b.Bytes); err != nil {
				return nil, err
			}
		}
	}
	if a.cert == nil || a.key == nil || !a.cert.IsCA {
		return nil, errors.New(CAFile + ": want a CA certificate and its P-256 key (EC PRIVATE KEY), PEM")
	}
	if pub, ok := a.cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&a.key.PublicKey) {
		return nil, errors.New(CAFile + ": the key is not the certificate's")
	}
	a.pool.AddCert(a.cert)
	return a, nil
}

// newAuthority makes a CA for a new fleet: P-256, ten years.
func newAuthority() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "pomdev relay fleet CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// issue makes this node's certificate, for a key that lives only in its
// memory: a client and server certificate named ServerName.
func (a *authority) issue() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: ServerName},
		DNSNames:     []string{ServerName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     a.cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sign: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// serverTLS accepts only clients with a certificate of the fleet's CA.
func (a *authority) serverTLS(leaf tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{leaf},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    a.pool,
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{"http/1.1"},
	}
}

// clientTLS trusts only servers with a certificate of the fleet's CA.
func (a *authority) clientTLS(leaf tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{leaf},
		RootCAs:      a.pool,
		ServerName:   ServerName,
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{"http/1.1"},
	}
}
