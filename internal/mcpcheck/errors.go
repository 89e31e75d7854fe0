package mcpcheck

import "fmt"

// URLError is a URL that is not one of an MCP endpoint over http(s).
type URLError struct{ URL string }

func (e *URLError) Error() string {
	return fmt.Sprintf("%q is not an http(s) URL of an MCP endpoint (for example http://127.0.0.1:8080/mcp)", e.URL)
}

// ArgsError is tool arguments that are not a JSON object.
type ArgsError struct{ Err error }

func (e *ArgsError) Error() string {
	return fmt.Sprintf("%v (give a JSON object, for example '{\"text\":\"hi\"}')", e.Err)
}
func (e *ArgsError) Unwrap() error { return e.Err }

// ToolError is a tools/call that failed: an MCP error (an unknown tool,
// bad arguments), or ErrToolFailed when the tool reported isError.
type ToolError struct {
	Tool string
	Err  error
}

func (e *ToolError) Error() string { return fmt.Sprintf("tools/call %s: %v", e.Tool, e.Err) }
func (e *ToolError) Unwrap() error { return e.Err }

// ConnectReason says why the MCP handshake failed.
type ConnectReason int

// Why a handshake failed.
const (
	ConnectNotMCP  ConnectReason = iota // an answer that is not MCP (a wrong path, another server)
	ConnectTimeout                      // no answer within the timeout
	ConnectNetwork                      // refused, DNS, TLS: nothing answered
)

// ConnectError is an MCP handshake that failed for a reason other than
// authorization (that is *AuthError).
type ConnectError struct {
	URL    string
	Err    error
	Reason ConnectReason
}

func (e *ConnectError) Error() string {
	switch e.Reason {
	case ConnectTimeout:
		return fmt.Sprintf("%s: no MCP answer within the timeout (%v)", e.URL, e.Err)
	case ConnectNetwork:
		return fmt.Sprintf("%s: %v", e.URL, e.Err)
	}
	return fmt.Sprintf("%s does not answer as an MCP server: %v", e.URL, e.Err)
}
func (e *ConnectError) Unwrap() error { return e.Err }

// StepError is a request after the handshake (tools/list, resources/read,
// ...) that failed; Timeout when it got no answer in time.
type StepError struct {
	Step    string
	Err     error
	Timeout bool
}

func (e *StepError) Error() string {
	if e.Timeout {
		return fmt.Sprintf("%s: no answer within the timeout: %v", e.Step, e.Err)
	}
	return fmt.Sprintf("%s failed: %v", e.Step, e.Err)
}
func (e *StepError) Unwrap() error { return e.Err }
