package access

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	jose "github.com/go-jose/go-jose/v4"
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

func loadKeys(dir string) (*keys, error) {
	k := &keys{}
	var err error
	if k.signing, k.kid, err = loadECKey(filepath.Join(dir, signingKeyFile)); err != nil {
		return nil, err
	}
	if k.idToken, k.idKid, err = loadECKey(filepath.Join(dir, idTokenKeyFile)); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, tokenKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil && len(data) == 32:
		copy(k.tokenKey[:], data)
	case err == nil:
		return nil, fmt.Errorf("%s: not a 32-byte key (delete it to make a new one; clients will refresh their tokens)", path)
	case errors.Is(err, fs.ErrNotExist):
		_, _ = rand.Read(k.tokenKey[:])
		if err := writePrivate(path, k.tokenKey[:]); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	return k, nil
}

// loadECKey reads the P-256 key at path, generating it the first time,
// and names it by its public key's hash.
func loadECKey(path string) (*ecdsa.PrivateKey, string, error) {
	var key *ecdsa.PrivateKey
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, "", fmt.Errorf("%s: no PEM key (move it away to generate a new one; apps will see a new JWKS)", path)
		}
		if key, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			return nil, "", fmt.Errorf("%s: %w (move it away to generate a new one)", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, "", err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, "", err
		}
		if err := writePrivate(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
			return nil, "", err
		}
	default:
		return nil, "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(pub)
	return key, encodeB64(sum[:12]), nil
}

func writePrivate(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
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
