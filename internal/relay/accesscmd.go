package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pomdev/pomdev/internal/relay/console"
	"github.com/pomdev/pomdev/internal/termsafe"
)

// The pomdev-access exec command of an SSH session: what the owner's key
// may do about access to its routes.

// runAccess runs `pomdev-access …` for the connection's key: approve or
// deny a request for one of its routes, list them, list or revoke grants.
func (c *conn) runAccess(out io.Writer, args []string) uint32 {
	a := c.r.access
	if a == nil {
		fmt.Fprintln(out, "This relay does not authorize HTTP requests (--http-auth none): there is nothing to approve.")
		return 1
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	usage := "usage: " + AccessCommand + " approve CODE | deny CODE | list | grants | revoke GRANT | token"
	if len(args) == 0 {
		fmt.Fprintln(out, usage)
		return 2
	}
	switch args[0] {
	case "approve", "allow", "deny":
		if len(args) != 2 {
			fmt.Fprintln(out, usage)
			return 2
		}
		req, err := a.Decide(ctx, args[1], args[0] != "deny", c.fp, "key "+c.fp)
		if err != nil {
			fmt.Fprintln(out, err)
			return 1
		}
		fmt.Fprintf(out, "%s %s for %s\n", termsafe.String(req.App()), req.State, req.Route)
	case "list":
		reqs, err := a.Pending(ctx, c.fp)
		if err != nil {
			fmt.Fprintln(out, err)
			return 1
		}
		for _, q := range reqs {
			fmt.Fprintln(out, console.AccessLine(q))
		}
	case "grants":
		gs, err := a.Grants(ctx, c.fp)
		if err != nil {
			fmt.Fprintln(out, err)
			return 1
		}
		for _, g := range gs {
			fmt.Fprintf(out, "%s  %s  for %s  until %s\n", g.ID, termsafe.String(g.Who()), termsafe.String(strings.Join(g.Routes, ", ")), g.Expires.UTC().Format(time.DateOnly))
		}
	case "token":
		// A token per live route of this key (on any of its connections),
		// for the owner's own checks through the tunnel (pomdev up, curl).
		c.r.mu.Lock()
		var names []string
		for name, rt := range c.r.routes {
			if rt.c.fp == c.fp {
				names = append(names, name)
			}
		}
		c.r.mu.Unlock()
		if len(names) == 0 {
			fmt.Fprintln(out, "this key holds no tunnel on this relay")
			return 1
		}
		for _, name := range names {
			tok, exp, err := a.MintOwner(ctx, name, c.fp)
			if err != nil {
				fmt.Fprintln(out, err)
				return 1
			}
			line, _ := json.Marshal(OwnerToken{Route: name, URL: c.r.urlFor(name), Token: tok, Expires: exp})
			fmt.Fprintf(out, "%s\n", line)
		}
	case "revoke":
		if len(args) != 2 {
			fmt.Fprintln(out, usage)
			return 2
		}
		if err := a.RevokeGrant(ctx, args[1], c.fp); err != nil {
			fmt.Fprintln(out, err)
			return 1
		}
		fmt.Fprintln(out, "revoked", args[1])
	default:
		fmt.Fprintln(out, usage)
		return 2
	}
	return 0
}

// OwnerToken is a line of `pomdev-access token`.
type OwnerToken struct {
	Route   string    `json:"route"`
	URL     string    `json:"url"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}
