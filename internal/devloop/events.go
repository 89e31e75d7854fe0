package devloop

import (
	"time"

	"github.com/pomdev/pomdev/internal/event"
	"github.com/pomdev/pomdev/internal/mcpcheck"
	"github.com/pomdev/pomdev/internal/supervise"
)

// Event is one thing that happened in a session; the types in this file
// are all of them. A session reports them to Config.OnEvent in the order
// they happened for each source (a process, the tunnel, the checks);
// rendering them is the caller's business.
type Event interface{ isEvent() }

// Assumed says that there is no pomdev.yaml and which processes the
// package.json scripts gave.
type Assumed struct{ Summary string }

// Inline says that the processes run with their inline settings.
type Inline struct{}

// MissingModules says that a package.json has no node_modules (Dir), or
// that a process (Process) crash-loops because its packages are missing.
type MissingModules struct{ Dir, Process string }

// Process is what one of the app's processes did. ServesTarget is true
// for the process serving the tunnel's target (the MCP server).
type Process struct {
	supervise.Event
	ServesTarget bool
}

// ProcessFailed is a process that could not be run at all.
type ProcessFailed struct {
	Process string
	Err     error
}

// CheckStale says that the MCP server went down at Since: the last
// check's verdict no longer holds.
type CheckStale struct {
	Process string
	Since   time.Time
}

// IdentityCreated is pomdev's SSH key, created on first use.
type IdentityCreated struct{ Fingerprint string }

// LocalRelay is the relay embedded for --relay local.
type LocalRelay struct{ URL, SSHAddr string }

// Tunnel is something the tunnel client did. Local is true on the
// embedded relay (its URL reaches this machine only).
type Tunnel struct {
	event.Tunnel
	Local bool
}

// RelayUnreachable is a relay never reached; the next try is in Wait.
type RelayUnreachable struct {
	Relay, Reason string
	Wait          time.Duration
}

// TunnelFailed is a tunnel that gave up (a refused key, a changed host
// key); the processes keep running.
type TunnelFailed struct{ Err error }

// OwnerControlUnavailable says that `pomdev access` cannot reach this
// session (its socket could not be opened).
type OwnerControlUnavailable struct{ Err error }

// CheckLocal is the check of the local MCP endpoint: its tools (sorted)
// and lint errors, or Err.
type CheckLocal struct {
	Cause, URL string
	Tools      []string
	Errors     []mcpcheck.Finding
	Err        error
}

// ToolsChanged is a tool list that changed since the last check (hosts
// cache it).
type ToolsChanged struct{ Added, Removed, Changed []string }

// CheckTunnel is the check through the tunnel. Gated: passed the relay's
// OAuth gate as the owner; Protected: an OAuth gate that pomdev could not
// pass (the tunnel works). LocalhostWidgets are widgets that load assets
// from localhost.
type CheckTunnel struct {
	URL              string
	Gated, Protected bool
	Err              error
	LocalhostWidgets []string
	// Hosts are the errors and warnings of the host rules (ChatGPT,
	// Claude) through the tunnel; HostsChecked says they were checked.
	Hosts        []mcpcheck.Finding
	HostsChecked bool
}

// Preview is the local MCP Apps host (pomdev preview) of the session,
// serving at URL; it renders the server's widgets again when the server
// restarts.
type Preview struct{ URL string }

// Stopping says that the session is stopping everything.
type Stopping struct{}

func (Assumed) isEvent()                 {}
func (Inline) isEvent()                  {}
func (MissingModules) isEvent()          {}
func (Process) isEvent()                 {}
func (ProcessFailed) isEvent()           {}
func (CheckStale) isEvent()              {}
func (IdentityCreated) isEvent()         {}
func (LocalRelay) isEvent()              {}
func (Tunnel) isEvent()                  {}
func (RelayUnreachable) isEvent()        {}
func (TunnelFailed) isEvent()            {}
func (OwnerControlUnavailable) isEvent() {}
func (CheckLocal) isEvent()              {}
func (ToolsChanged) isEvent()            {}
func (CheckTunnel) isEvent()             {}
func (Preview) isEvent()                 {}
func (Stopping) isEvent()                {}
