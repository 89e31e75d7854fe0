package mcpcheck

import (
	"encoding/json"
	"fmt"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// LintCall checks a tool call's result as the official Inspector does:
// structuredContent against the tool's outputSchema (CALL001, validated by
// github.com/google/jsonschema-go), an outputSchema with no
// structuredContent (CALL002), and content, which hosts without MCP Apps
// show, not empty (CALL003). tool may be nil (not listed).
func LintCall(tool *mcp.Tool, res *mcp.CallToolResult) []Finding {
	if res == nil {
		return nil
	}
	var out []Finding
	name := "?"
	if tool != nil {
		name = tool.Name
	}
	if len(res.Content) == 0 {
		out = append(out, finding("CALL003", name, "the result's content is empty: a host without MCP Apps (or the model) gets nothing to read",
			"return a text summary in content beside structuredContent"))
	}
	if tool == nil || tool.OutputSchema == nil || res.IsError {
		return out // an error result need not match the schema
	}
	if res.StructuredContent == nil {
		return append(out, finding("CALL002", name, "the tool declares an outputSchema but its result has no structuredContent",
			"return structuredContent matching the outputSchema (or drop the outputSchema)"))
	}
	b, err := json.Marshal(tool.OutputSchema)
	if err != nil {
		return out
	}
	var schema jsonschema.Schema
	if err := json.Unmarshal(b, &schema); err != nil {
		return append(out, finding("CALL001", name, fmt.Sprintf("the outputSchema cannot be read: %v", err), "declare outputSchema as a JSON Schema object"))
	}
	resolved, err := schema.Resolve(nil)
	if err != nil {
		return append(out, finding("CALL001", name, fmt.Sprintf("the outputSchema cannot be used: %v", err), "fix the outputSchema (remote $refs are not followed)"))
	}
	// Validate the value as JSON decodes it, whatever type the SDK kept.
	sb, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return out
	}
	var instance any
	if err := json.Unmarshal(sb, &instance); err != nil {
		return out
	}
	if err := resolved.Validate(instance); err != nil {
		out = append(out, finding("CALL001", name, fmt.Sprintf("structuredContent does not match the outputSchema: %v", err),
			"make the result match the outputSchema, or correct the schema"))
	}
	return out
}
