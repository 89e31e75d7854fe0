package relaycmd

import (
	"encoding/json"
	"fmt"
	ctl "github.com/pomdev/pomdev/internal/relay/control"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/pomdev/pomdev/internal/cli/factory"
	"github.com/pomdev/pomdev/internal/termsafe"
	"github.com/spf13/cobra"
)

// NewCmdRoutes returns `pomdev relay routes`, the inventory of every
// local-to-public path the relay exposes.
func NewCmdRoutes(f *factory.Factory) *cobra.Command {
	var asJSON bool
	cmd := controlCmd(f, "routes", "List every live tunnel: owner, target, authorization, tool rules, grants, last request",
		`The inventory of what a running relay exposes: each live route with the key that
holds it (and the person, when it signed in through the identity provider), what
it forwards to, how requests are authorized (owner: OAuth grants; app: the app's
own; none), the tool rules in force (the relay's policy and the tunnel's own),
the grants its owner gave, and its last request. It reaches the relay running
with the same state directory over its control socket (present with --auth
signin, --http-auth owner or --policy).`,
		"  pomdev relay routes\n  pomdev relay routes --json | jq '.[] | select(.tools == \"all\")'", factory.NoArgs,
		func(o *ControlOptions) error {
			var a ctl.Answer
			if err := control(o, http.MethodGet, "/routes", nil, &a); err != nil {
				return err
			}
			if asJSON {
				if a.Routes == nil {
					a.Routes = []ctl.RouteInfo{}
				}
				enc := json.NewEncoder(o.IO.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(a.Routes)
			}
			if len(a.Routes) == 0 {
				fmt.Fprintln(o.IO.Out, "No tunnel is connected.")
				return nil
			}
			tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROUTE\tOWNER\tTARGET\tHTTP AUTH\tTOOLS\tGRANTS\tREQUESTS\tLAST REQUEST")
			for _, r := range a.Routes {
				owner := r.OwnerKey
				if r.OwnerEmail != "" {
					owner = r.OwnerEmail + " (" + r.OwnerKey + ")"
				}
				last := "never"
				if !r.Last.IsZero() {
					last = time.Since(r.Last).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.Name, termsafe.String(owner), termsafe.String(r.Target), r.HTTPAuth,
					termsafe.String(r.Tools), r.Grants, r.Requests, last)
			}
			return tw.Flush()
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the inventory as JSON")
	return cmd
}
