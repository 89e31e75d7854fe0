package factory

import (
	"errors"
	"fmt"
	"net"

	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/devloop"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/scaffold"
	"github.com/pomdev/pomdev/internal/tunnel"
)

// Exit gives the typed errors of pomdev's library packages (config,
// devloop, mcpcheck, scaffold, tunnel) their exit code and a hint naming
// the flags or commands that help. An error that already has a code
// (*exitcode.Error), or that no rule knows, is returned as it is; nil
// stays nil. The commands' errors all go through it (cli.run).
func Exit(err error) error {
	var coded *exitcode.Error
	if err == nil || errors.As(err, &coded) {
		return err
	}
	var (
		cfgErr     *config.Error
		devCfg     *devloop.ConfigError
		port       *devloop.PortInUseError
		relayAddr  *devloop.RelayError
		watchErr   *devloop.WatchError
		urlErr     *mcpcheck.URLError
		profileErr *mcpcheck.ProfileError
		argsErr    *mcpcheck.ArgsError
		toolErr    *mcpcheck.ToolError
		authErr    *mcpcheck.AuthError
		connErr    *mcpcheck.ConnectError
		stepErr    *mcpcheck.StepError
		nameErr    *scaffold.NameError
		notEmpty   *scaffold.NotEmptyError
		conflict   *scaffold.ConflictError
		hostKey    *tunnel.HostKeyChangedError
		keyRefused *tunnel.KeyRefusedError
		noRelay    *tunnel.UnreachableError
	)
	switch {
	case errors.As(err, &cfgErr), errors.As(err, &devCfg):
		return exitcode.New(exitcode.Usage, err, "")
	case errors.As(err, &port):
		return exitcode.New(exitcode.Failure, err,
			"stop it, or change the port in pomdev.yaml: the process's port, its env PORT, its health URL and tunnel.target together")
	case errors.As(err, &relayAddr):
		return exitcode.New(exitcode.Usage, fmt.Errorf("--relay: %w", relayAddr), "")
	case errors.As(err, &watchErr):
		return exitcode.New(exitcode.Failure, err,
			"raise the inotify limits (sysctl fs.inotify.max_user_watches and max_user_instances), or add what need not be watched to ignore in pomdev.yaml")
	case errors.As(err, &urlErr), errors.As(err, &profileErr):
		return exitcode.New(exitcode.Usage, err, "")
	case errors.As(err, &argsErr):
		return exitcode.New(exitcode.Usage, fmt.Errorf("--args: %w", argsErr), "")
	case errors.As(err, &toolErr):
		hint := ""
		if !errors.Is(err, mcpcheck.ErrToolFailed) {
			hint = "check the tool name and --args against tools/list"
		}
		return exitcode.New(exitcode.ToolError, err, hint)
	case errors.As(err, &authErr):
		return exitcode.New(exitcode.AuthRequired, err, "log in with --login, or pass a token with --token T or --header 'Authorization: Bearer T'")
	case errors.As(err, &connErr):
		hint := "check the URL: MCP servers usually serve Streamable HTTP at /mcp"
		switch connErr.Reason {
		case mcpcheck.ConnectTimeout:
			hint = "raise --timeout, or check that this is the MCP endpoint (usually /mcp)"
		case mcpcheck.ConnectNetwork:
			hint = "is the server running? (pomdev up starts it)"
		}
		return exitcode.New(exitcode.Unreachable, err, hint)
	case errors.As(err, &stepErr):
		hint := ""
		if stepErr.Timeout {
			hint = "raise --timeout, or check that the server answers"
		}
		return exitcode.New(exitcode.Unreachable, err, hint)
	case errors.As(err, &nameErr):
		return exitcode.New(exitcode.Usage, err, "")
	case errors.As(err, &notEmpty):
		return exitcode.New(exitcode.Usage, err, "choose a new directory, or pass --force to add the template's files without overwriting any")
	case errors.As(err, &conflict):
		return exitcode.New(exitcode.Failure, err, "move those files away, or scaffold into a new directory")
	case errors.As(err, &hostKey):
		host, _, serr := net.SplitHostPort(hostKey.Host)
		if serr != nil {
			host = hostKey.Host
		}
		return exitcode.New(exitcode.Failure, err, "if you trust the new key, run: pomdev known-hosts forget "+host)
	case errors.As(err, &keyRefused):
		return exitcode.New(exitcode.AuthRequired, err, "the relay does not accept this key (or the sign-in was denied); check --identity or sign in again")
	case errors.As(err, &noRelay):
		return exitcode.New(exitcode.Unreachable, err, "check the relay address (--relay) and that the relay is running")
	}
	return err
}
