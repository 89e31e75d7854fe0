// Package access is the relay's authorization of public HTTP requests: an
// MCP OAuth 2.1 authorization server on the relay's own domain whose grants
// the owner of a tunnel approves from their terminal, and the resource
// server check on every route.
//
// The OAuth protocol (authorize and token endpoints, PKCE verification,
// client authentication, revocation, introspection, JWKS) is
// github.com/zitadel/oidc's op package; what is written here is the MCP
// glue: per-route resources (RFC 8707, RFC 9728), client ID metadata
// documents and dynamic registration, the owner's approval, and the
// storage behind op (SQLite, secrets hashed).
package access

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pomdev/pomdev/internal/event"
	relaystore "github.com/pomdev/pomdev/internal/relay/store"
	"github.com/pomdev/pomdev/internal/relayrule"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Scope is the one scope a relay grant carries.
const Scope = "mcp"

// Paths on the relay's domain.
const (
	PathAuthorize   = "/oauth/authorize"
	PathToken       = "/oauth/token"
	PathRegister    = "/oauth/register"
	PathRevoke      = "/oauth/revoke"
	PathIntrospect  = "/oauth/introspect"
	PathApprove     = "/oauth/approve"
	PathJWKS        = "/.well-known/jwks.json" // the keys of identity assertions
	PathIDTokenJWKS = "/oauth/jwks"            // the keys of ID tokens
	PathASMeta      = "/.well-known/oauth-authorization-server"
	PathOIDCMeta    = "/.well-known/openid-configuration"
	// PathPRM is the protected-resource metadata on a route's host (RFC
	// 9728), also served with the resource's path (/mcp) appended.
	PathPRM = "/.well-known/oauth-protected-resource"
)

// Resolver is what the relay tells the authorization server about routes.
type Resolver interface {
	// RouteOf maps a resource URL (a route's URL, with or without /mcp)
	// to the route's name.
	RouteOf(resource string) (route string, ok bool)
	// Resource is the canonical resource of a route: its URL + /mcp.
	Resource(route string) string
	// Owner is the fingerprint of the key a route name belongs to, "" when
	// it belongs to none.
	Owner(route string) string
	// Notify tells the owner's connections that a request is pending or
	// was decided.
	Notify(Request)
}

// Config configures a Server.
type Config struct {
	// Issuer is the relay's public URL, exactly as clients reach it.
	Issuer   string
	StateDir string
	Resolver Resolver
	// DB is the relay's database (relay/store.Open); nil opens one in StateDir.
	DB *sql.DB
	// AdminToken, when set, lets the relay's admin decide a request on its
	// authorize page, where TokenSafe says the token may be sent (TLS, an
	// https front behind a proxy, or loopback).
	AdminToken string
	TokenSafe  func(*http.Request) bool

	// SignIn, when set, replaces the owner's approval: the authorize page
	// sends the person to the identity provider, and Allow (required with
	// it) says whether who came back may call the route, and if not why.
	SignIn func(w http.ResponseWriter, r *http.Request, done func(http.ResponseWriter, *http.Request, Person, error))
	Allow  func(route string, p Person) (bool, string)
	// OwnerApproval, with SignIn, also asks the route's owner to approve
	// each request once its person has signed in and is allowed.
	OwnerApproval bool

	GrantTTL   time.Duration // remembered approval per (owner, client) (30 days)
	AccessTTL  time.Duration // access tokens (1 h)
	RequestTTL time.Duration // a request waiting for approval (10 min)

	// AllowPrivateFetch lets client metadata documents come from
	// loopback and private addresses: only for a relay on loopback.
	AllowPrivateFetch bool
	// FetchRoots, when set, are the CAs trusted for metadata documents
	// (tests); nil means the system's.
	FetchRoots *x509.CertPool
	// MaxClients bounds dynamically registered clients (10,000).
	MaxClients int

	// Revoked, when set, is told after tokens were revoked here (the
	// relay tells the other relays of its store). TrustCache, when set,
	// says whether verdicts cached before may be used: false while the
	// relay cannot hear other relays' revocations.
	Revoked    func()
	TrustCache func() bool

	Logger *slog.Logger
	Now    func() time.Time
}

// Person is who signed in at the identity provider.
type Person struct {
	Sub, Email string
}

func (p Person) String() string {
	if p.Email != "" {
		return p.Email
	}
	return "subject " + p.Sub
}

// Request is an authorization request as its owner sees it.
type Request = event.Access

// Server is the authorization and resource server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	st       *store
	provider *op.Provider
	keys     *keys
	fetch    *cimd
	dcr      *registrar
	jtis     *spentJTIs
	audit    *audit

	bearer  sync.Map     // route -> *auth.RequireBearerTokenOptions
	bearerN atomic.Int64 // entries stored in bearer since it was last cleared

	mu       sync.Mutex
	verdicts map[string]*verdict // by access token
	failures map[string]*failureCount
	// sharedLimits: the failures are counted in the store's table limits
	// (a PostgreSQL store), for every relay of it.
	sharedLimits bool

	stop  chan struct{}
	done  chan struct{}
	check relaystore.Pinger // the store's last answer, for storeDownWriter
}

// New opens the state and prepares the endpoints.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" || cfg.StateDir == "" || cfg.Resolver == nil {
		return nil, errors.New("access: issuer, state directory and resolver are required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("access: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.GrantTTL, relayrule.DefaultGrantTTL)
	def(&cfg.AccessTTL, time.Hour)
	def(&cfg.RequestTTL, 10*time.Minute)
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 10_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	st, err := openStore(cfg.StateDir, cfg.DB)
	if err != nil {
		return nil, err
	}
	k, err := loadKeys(cfg.StateDir, st.db)
	if err != nil {
		st.close()
		return nil, err
	}
	au, err := openAudit(cfg.StateDir, cfg.Now)
	if err != nil {
		st.close()
		return nil, err
	}
	shared := relaystore.EngineOf(st.db) == relaystore.Postgres
	if shared {
		au.table = &tableTrail{db: st.db}
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, st: st, keys: k, audit: au, sharedLimits: shared, check: relaystore.Pinger{DB: st.db},
		fetch:    newCIMD(cfg.AllowPrivateFetch, cfg.FetchRoots, cfg.Now),
		dcr:      newRegistrar(cfg.Now),
		jtis:     newSpentJTIs(),
		verdicts: map[string]*verdict{},
		failures: map[string]*failureCount{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	opts := []op.Option{
		op.WithCustomAuthEndpoint(op.NewEndpoint(strings.TrimPrefix(PathAuthorize, "/"))),
		op.WithCustomTokenEndpoint(op.NewEndpoint(strings.TrimPrefix(PathToken, "/"))),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(strings.TrimPrefix(PathIntrospect, "/"))),
		op.WithCustomRevocationEndpoint(op.NewEndpoint(strings.TrimPrefix(PathRevoke, "/"))),
		op.WithCustomKeysEndpoint(op.NewEndpoint(strings.TrimPrefix(PathIDTokenJWKS, "/"))),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint("oauth/userinfo")),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint("oauth/end_session")),
		op.WithLogger(cfg.Logger),
	}
	if u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	s.provider, err = op.NewProvider(&op.Config{
		CryptoKey:             k.tokenKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       []string{Scope, "offline_access"},
		SupportedUILocales:    []language.Tag{language.English},
	}, &opStorage{s: s}, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		st.close()
		au.close()
		return nil, fmt.Errorf("access: %w", err)
	}
	go s.sweeper()
	return s, nil
}

// Close stops the sweeper and closes the database.
func (s *Server) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	<-s.done
	aerr := s.audit.close()
	if err := s.st.close(); err != nil {
		return err
	}
	return aerr
}

func (s *Server) sweeper() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.audit.flush(); err != nil && n%60 == 0 {
			s.log.Warn("cannot write the audit trail", "err", err)
		}
		if n%60 != 0 {
			continue
		}
		if err := s.st.sweep(context.Background(), s.cfg.Now()); err != nil {
			s.log.Warn("cannot sweep expired access state", "err", err)
		}
		if s.audit.table != nil {
			if err := s.audit.table.sweep(context.Background(), s.cfg.Now()); err != nil {
				s.log.Warn("cannot sweep the store's audit table", "err", err)
			}
		}
		if s.sharedLimits {
			if _, err := s.st.db.Exec(`DELETE FROM limits WHERE reset <= $1`, s.cfg.Now().UnixMilli()); err != nil {
				s.log.Warn("cannot sweep the store's rate-limit windows", "err", err)
			}
		}
		s.dropExpiredVerdicts()
		s.jtis.sweep(s.cfg.Now())
	}
}

// Handles reports whether path on the relay's domain belongs to the
// authorization server.
func Handles(path string) bool {
	return strings.HasPrefix(path, "/oauth/") || path == PathJWKS || path == PathASMeta ||
		path == PathOIDCMeta || strings.HasPrefix(path, PathASMeta+"/") || strings.HasPrefix(path, PathOIDCMeta+"/")
}

// ServeHTTP serves the authorization server's endpoints on the relay's
// domain.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sw := &storeDownWriter{ResponseWriter: w, s: s}
	w = sw
	switch {
	case r.URL.Path == PathASMeta || strings.HasPrefix(r.URL.Path, PathASMeta+"/"):
		s.serveMetadata(w, r, false)
	case r.URL.Path == PathOIDCMeta || strings.HasPrefix(r.URL.Path, PathOIDCMeta+"/"):
		s.serveMetadata(w, r, true)
	case r.URL.Path == PathRegister:
		s.serveRegister(w, r)
	case r.URL.Path == PathApprove:
		s.serveApprove(w, r)
	case r.URL.Path == PathAuthorize:
		s.serveAuthorize(w, r)
	case r.URL.Path == PathToken:
		s.serveToken(w, r)
	case r.URL.Path == PathJWKS:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_ = json.NewEncoder(w).Encode(s.keys.identityJWKS())
	case r.URL.Path == PathRevoke, r.URL.Path == PathIntrospect:
		s.serveClientAuthenticated(w, r)
	case r.URL.Path == PathAuthorize+"/callback":
		s.provider.ServeHTTP(issWriter{w, s}, r)
	case r.URL.Path == PathIDTokenJWKS:
		s.provider.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// random is n random bytes as unpadded base64url, never starting with
// "-" or "_": IDs are typed on command lines (pomdev access revoke ID),
// where a leading "-" reads as a flag. Drawing again loses less than a
// tenth of a bit.
func random(n int) string {
	b := make([]byte, n)
	for {
		_, _ = rand.Read(b)
		if s := encodeB64(b); s[0] != '-' && s[0] != '_' {
			return s
		}
	}
}
