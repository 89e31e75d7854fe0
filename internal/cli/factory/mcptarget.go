package factory

import (
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// EnvClientSecret holds the secret of --oauth-client-id, as
// --oauth-client-secret-file does (never a flag value: command lines are
// visible to every user of the machine).
const EnvClientSecret = "POMDEV_OAUTH_CLIENT_SECRET"

// MCPTarget is how a command that talks to an MCP server (inspect,
// preview) reaches it: an optional URL argument, headers, a bearer token
// and --login.
type MCPTarget struct {
	headers                      []string
	token                        string
	login                        bool
	clientIDMetadataURL, oauthID string
	secretFile                   string
}

// AddFlags registers -H, --token, --login and its two client flags.
func (t *MCPTarget) AddFlags(fl *pflag.FlagSet) {
	fl.StringArrayVarP(&t.headers, "header", "H", nil, "header 'Name: value' sent with every request (repeatable)")
	fl.StringVar(&t.token, "token", "", "bearer token (sets Authorization: Bearer T)")
	fl.BoolVar(&t.login, "login", false, "log in with OAuth (browser, PKCE) when the server asks; tokens cached in the config dir")
	fl.StringVar(&t.clientIDMetadataURL, "client-id-metadata-url", "", "with --login: an https URL of a client ID metadata document to identify as (else dynamic registration)")
	fl.StringVar(&t.oauthID, "oauth-client-id", "", "with --login: a client ID registered beforehand with the authorization server, used before a metadata document or registration (its secret, if any, in --oauth-client-secret-file or $"+EnvClientSecret+")")
	fl.StringVar(&t.secretFile, "oauth-client-secret-file", "", "with --oauth-client-id: a file holding the client's secret")
}

// OneURL accepts at most one argument, the server's URL.
func OneURL(verb string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			return exitcode.Usagef("%s takes at most one URL, got %d arguments", verb, len(args))
		}
		return nil
	}
}

// Resolve gives the URL (the argument, else DefaultURL), the headers
// (Headers) and, with --login, the OAuth login.
func (t *MCPTarget) Resolve(f *Factory, cfg *config.Loaded, args []string) (url string, headers map[string]string, login *mcpcheck.Login, err error) {
	if headers, err = Headers(cfg, t.headers, t.token); err != nil {
		return "", nil, nil, err
	}
	if len(args) == 1 {
		url = args[0]
	} else if url, err = DefaultURL(cfg); err != nil {
		return "", nil, nil, err
	}
	secret := os.Getenv(EnvClientSecret)
	if t.secretFile != "" {
		if t.oauthID == "" {
			return "", nil, nil, exitcode.Usagef("--oauth-client-secret-file is the secret of --oauth-client-id: give the client ID too")
		}
		if secret != "" {
			return "", nil, nil, exitcode.Usagef("--oauth-client-secret-file and $%s both give a client secret: give one", EnvClientSecret)
		}
		b, err := os.ReadFile(t.secretFile)
		if err != nil {
			return "", nil, nil, exitcode.Usagef("--oauth-client-secret-file: %v", err)
		}
		if secret = strings.TrimSpace(string(b)); secret == "" {
			return "", nil, nil, exitcode.Usagef("--oauth-client-secret-file %s is empty", t.secretFile)
		}
	}
	if t.login {
		dir, err := f.ConfigDir()
		if err != nil {
			return "", nil, nil, err
		}
		login = &mcpcheck.Login{Dir: dir, Out: f.IOStreams.ErrOut, OpenBrowser: f.Browser(),
			Follow: os.Getenv(mcpcheck.EnvLoginBrowser) == "follow", ClientIDMetadataURL: t.clientIDMetadataURL,
			ClientID: t.oauthID, ClientSecret: secret}
	}
	return url, headers, login, nil
}

// Headers are inspect.headers, then each --header 'Name: value', then
// --token as a bearer Authorization.
func Headers(cfg *config.Loaded, flags []string, token string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range cfg.Inspect.Headers {
		out[k] = v
	}
	for _, h := range flags {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, exitcode.Usagef("--header %q: want 'Name: value'", h)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if token != "" {
		out["Authorization"] = "Bearer " + token
	}
	return out, nil
}

// DefaultURL is inspect.url, else the MCP endpoint of the app's server.
func DefaultURL(cfg *config.Loaded) (string, error) {
	if cfg.Inspect.URL != "" {
		return cfg.Inspect.URL, nil
	}
	var port int
	for _, p := range cfg.Processes {
		if p.Port != 0 && (port == 0 || p.Name == "server") {
			port = p.Port
		}
	}
	if port == 0 {
		return "", exitcode.Usagef("no URL: give one (http://127.0.0.1:8080/mcp), or set inspect.url or a server process with a port in pomdev.yaml")
	}
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/mcp", nil
}
