package access

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"path/filepath"

	jose "github.com/go-jose/go-jose/v4"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
)

// Key files in the state directory (0600).
const (
	signingKeyFile = "oauth_signing_key.pem"  // ES256: identity assertions (X-Pomdev-Identity), /.well-known/jwks.json
	idTokenKeyFile = "oauth_id_token_key.pem" // ES256: ID tokens, /oauth/jwks
	tokenKeyFile   = "oauth_token_key"        // AES-256: access tokens are sealed with it
)

// keys are the relay's secrets. The assertions apps trust and the ID
// tokens clients get are signed with different keys, published in
// different sets: an ID token (which op issues with every token
// response) never verifies as an identity assertion.
type keys struct {
	signing  *ecdsa.PrivateKey
	kid      string
	idToken  *ecdsa.PrivateKey
	idKid    string
	tokenKey [32]byte
}

func encodeB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// loadKeys reads the relay's OAuth keys, generating them the first time:
// files of the state directory, or the store's secrets that every relay
// of a PostgreSQL store shares (relaystore.Secret).
func loadKeys(dir string, db *sql.DB) (*keys, error) {
	k := &keys{}
	var err error
	if k.signing, k.kid, err = loadECKey(db, dir, signingKeyFile); err != nil {
		return nil, err
	}
	if k.idToken, k.idKid, err = loadECKey(db, dir, idTokenKeyFile); err != nil {
		return nil, err
	}
	data, _, err := relaystore.Secret(db, dir, tokenKeyFile, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
	path := filepath.Join(dir, tokenKeyFile)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", path, err)
	case len(data) != 32:
		return nil, fmt.Errorf("%s: not a 32-byte key (delete it to make a new one; clients will refresh their tokens)", path)
	}
	copy(k.tokenKey[:], data)
	return k, nil
}

// loadECKey reads the P-256 key name, generating it the first time, and
// names it by its public key's hash.
func loadECKey(db *sql.DB, dir, name string) (*ecdsa.PrivateKey, string, error) {
	path := filepath.Join(dir, name)
	data, _, err := relaystore.Secret(db, dir, name, func() ([]byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", fmt.Errorf("%s: no PEM key (move it away to generate a new one; apps will see a new JWKS)", path)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w (move it away to generate a new one)", path, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(pub)
	return key, encodeB64(sum[:12]), nil
}

func (k *keys) signer() (jose.Signer, error) {
	return jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.signing, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
}

// identityJWKS is the public set apps verify identity assertions with.
func (k *keys) identityJWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.signing.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"}}}
}

// op's key interfaces: op signs ID tokens, and serves their set, with the
// ID token key only.

type signingKey struct{ k *keys }

func (s signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (s signingKey) Key() any                                    { return s.k.idToken }
func (s signingKey) ID() string                                  { return s.k.idKid }

type publicKey struct{ k *keys }

func (p publicKey) ID() string                         { return p.k.idKid }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.idToken.PublicKey }
