package mcpcheck

import (
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Client profiles: the capabilities the check declares in initialize,
// since servers offer different tools to different clients.
const (
	// ProfileDefault declares roots (with listChanged) and the MCP Apps
	// extension: the tools the official Inspector CLI lists, with their
	// UI bindings.
	ProfileDefault = "apps"
	// ProfileInspector declares what @modelcontextprotocol/inspector
	// 2.12.0's CLI declares (its initialize request, read on the wire):
	// roots with listChanged and the tasks and skills extensions.
	ProfileInspector = "inspector"
	// ProfileBare declares nothing, as a minimal client does.
	ProfileBare = "bare"
)

// Profiles are the names --client takes.
var Profiles = []string{ProfileDefault, ProfileInspector, ProfileBare}

// ProfileError is a client profile that does not exist.
type ProfileError struct{ Name string }

func (e *ProfileError) Error() string {
	return fmt.Sprintf("client profile %q: want one of %s", e.Name, strings.Join(Profiles, ", "))
}

// capabilities returns the profile's client capabilities; apps adds the
// MCP Apps extension (to any profile).
func capabilities(profile string, apps bool) (*mcp.ClientCapabilities, error) {
	caps := &mcp.ClientCapabilities{}
	switch profile {
	case "", ProfileDefault, ProfileInspector:
		// Roots are deprecated from protocol 2026-07-28 (SEP-2577) but hosts
		// and the Inspector still declare them, and servers of 2025-11-25
		// offer tools by them.
		//lint:ignore SA1019 what today's clients declare
		caps.RootsV2 = &mcp.RootCapabilities{ListChanged: true}
	}
	switch profile {
	case "", ProfileDefault:
	case ProfileInspector:
		caps.AddExtension("io.modelcontextprotocol/tasks", map[string]any{})
		caps.AddExtension("io.modelcontextprotocol/skills", map[string]any{})
		apps = false // the Inspector CLI does not declare it; --client inspector is what it sees
	case ProfileBare:
		apps = false
	default:
		return nil, &ProfileError{Name: profile}
	}
	if apps {
		caps.AddExtension(AppsExtension, map[string]any{"mimeTypes": []any{UIMIMEType}})
	}
	return caps, nil
}
