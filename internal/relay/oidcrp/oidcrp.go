// Package oidcrp makes the relay a relying party of an OpenID Connect
// provider: discovery, the authorization code flow with PKCE, state and
// nonce, and ID-token verification, all by coreos/go-oidc and
// golang.org/x/oauth2. A flow is started for a purpose (an SSH sign-in, an
// MCP client's authorization) and ends in that purpose's callback with the
// person's verified identity.
package oidcrp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// CallbackPath is where the provider sends the browser back, on the
// relay's own host.
const CallbackPath = "/.pomdev/oidc/callback"

// cookieName binds a flow to the browser that started it (login CSRF).
const cookieName = "pomdev_oidc"

// Limits of flows in progress.
const (
	FlowTTL  = 10 * time.Minute
	MaxFlows = 1024
)

// Config names the provider and the relay's client at it.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the relay's base URL + CallbackPath.
	RedirectURL string
	// HTTPClient reaches the provider (nil: a client with a 15 s timeout).
	HTTPClient *http.Client
	Now        func() time.Time
}

// Identity is who signed in, as the provider's ID token says. Email is
// set only when the provider says it is verified.
type Identity struct {
	Issuer string `json:"iss"`
	Sub    string `json:"sub"`
	Email  string `json:"email,omitempty"`
	Name   string `json:"name,omitempty"`
}

// Done receives the end of a flow: the identity, or why there is none.
type Done func(w http.ResponseWriter, r *http.Request, id Identity, err error)

// RP is the relying party.
type RP struct {
	cfg      Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config

	mu    sync.Mutex
	flows map[string]*flow // by state
}

type flow struct {
	verifier, nonce string
	expires         time.Time
	done            Done
}

// New discovers the provider (its /.well-known/openid-configuration).
func New(ctx context.Context, cfg Config) (*RP, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("oidc: an issuer and a client ID are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s: %w", cfg.Issuer, err)
	}
	rp := &RP{cfg: cfg, provider: p, flows: map[string]*flow{},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: cfg.Now}),
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.RedirectURL, Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}}
	return rp, nil
}

// Issuer is the provider's issuer URL.
func (p *RP) Issuer() string { return p.cfg.Issuer }

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start sends the browser to the provider; done runs when it comes back.
func (p *RP) Start(w http.ResponseWriter, r *http.Request, done Done) {
	now := p.cfg.Now()
	p.mu.Lock()
	for k, f := range p.flows {
		if !now.Before(f.expires) {
			delete(p.flows, k)
		}
	}
	if len(p.flows) >= MaxFlows {
		p.mu.Unlock()
		done(w, r, Identity{}, errors.New("too many sign-ins in progress; try again in a few minutes"))
		return
	}
	state := random()
	f := &flow{verifier: oauth2.GenerateVerifier(), nonce: random(), expires: now.Add(FlowTTL), done: done}
	p.flows[state] = f
	p.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: state, Path: "/.pomdev/oidc", MaxAge: int(FlowTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: p.secure(r)})
	http.Redirect(w, r, p.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)), http.StatusFound)
}

// secure reports whether the flow's cookie is Secure: when the relay's
// public address is HTTPS (the relay behind a TLS terminator sees plain
// HTTP) or the request came over TLS.
func (p *RP) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(p.cfg.RedirectURL, "https://")
}

// ServeCallback ends a flow: the code is exchanged (with the PKCE
// verifier), the ID token verified (signature, issuer, audience, expiry,
// nonce) and the flow's done called with the identity.
func (p *RP) ServeCallback(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	p.mu.Lock()
	f, ok := p.flows[state]
	if ok {
		delete(p.flows, state)
	}
	p.mu.Unlock()
	if !ok || !p.cfg.Now().Before(f.expires) {
		http.Error(w, "This sign-in is unknown or expired: start again from the link in your terminal.", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Path: "/.pomdev/oidc", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: p.secure(r)})
	if c, err := r.Cookie(cookieName); err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		f.done(w, r, Identity{}, errors.New("this sign-in was started in another browser: open the link from your terminal in this one"))
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		f.done(w, r, Identity{}, fmt.Errorf("the identity provider refused: %s %s", e, r.URL.Query().Get("error_description")))
		return
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(r.Context(), p.cfg.HTTPClient), 20*time.Second)
	defer cancel()
	tok, err := p.oauth.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		f.done(w, r, Identity{}, fmt.Errorf("the identity provider did not give a token: %w", err))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		f.done(w, r, Identity{}, errors.New("the identity provider's answer has no ID token"))
		return
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		f.done(w, r, Identity{}, fmt.Errorf("the ID token does not verify: %w", err))
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.nonce)) != 1 {
		f.done(w, r, Identity{}, errors.New("the ID token's nonce is not this sign-in's"))
		return
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		f.done(w, r, Identity{}, fmt.Errorf("the ID token's claims: %w", err))
		return
	}
	id := Identity{Issuer: idt.Issuer, Sub: idt.Subject, Name: claims.Name}
	// Some providers send "true" as a string.
	if v, ok := claims.EmailVerified.(bool); ok && v || claims.EmailVerified == "true" {
		id.Email = claims.Email
	}
	if id.Sub == "" {
		f.done(w, r, Identity{}, errors.New("the ID token has no subject"))
		return
	}
	if claims.Email == "" && p.provider.UserInfoEndpoint() != "" {
		// Many providers put the email in the userinfo answer only.
		ui, err := p.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			f.done(w, r, Identity{}, fmt.Errorf("the identity provider's userinfo: %w", err))
			return
		}
		if ui.Subject != id.Sub {
			f.done(w, r, Identity{}, errors.New("the userinfo answer is about another subject than the ID token"))
			return
		}
		if ui.EmailVerified {
			id.Email = ui.Email
		}
	}
	f.done(w, r, id, nil)
}
