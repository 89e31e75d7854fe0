package factory

import (
	"github.com/pomdev/pomdev/internal/toolrule"
	"strings"

	"github.com/pomdev/pomdev/internal/config"
	"github.com/pomdev/pomdev/internal/exitcode"
	"github.com/pomdev/pomdev/internal/publicpath"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// AddToolFlags adds --allow-tools and --deny-tools (pomdev up, pomdev
// tunnel): the tunnel's own tool rules, which a pomdev relay enforces.
func AddToolFlags(fl *pflag.FlagSet) {
	fl.StringSlice("allow-tools", nil, "let through only these MCP tools (names, or prefixes ending in *); needs a pomdev relay")
	fl.StringSlice("deny-tools", nil, "refuse and hide these MCP tools (names, or prefixes ending in *: 'delete_*'); needs a pomdev relay")
	fl.StringSlice("public-paths", nil, "asset paths a pomdev relay with --http-auth serves without a token (globs under one directory: '/widgets/**'); hosts load widgets in frames that cannot send one")
}

// PublicPathFlag puts --public-paths, when given, in place of
// tunnel.public_paths.
func PublicPathFlag(cmd *cobra.Command, dst *[]string) error {
	if !cmd.Flags().Changed("public-paths") {
		return nil
	}
	vals, _ := cmd.Flags().GetStringSlice("public-paths")
	if _, err := publicpath.Parse(strings.Join(vals, ",")); err != nil {
		return exitcode.Usagef("--public-paths: %v", err)
	}
	*dst = vals
	return nil
}

// ToolFlags puts the flags, when given, in place of tunnel.tools' lists.
func ToolFlags(cmd *cobra.Command, t *config.ToolRules) error {
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"allow-tools", &t.Allow}, {"deny-tools", &t.Deny}} {
		if !cmd.Flags().Changed(f.name) {
			continue
		}
		vals, _ := cmd.Flags().GetStringSlice(f.name)
		for _, v := range vals {
			if err := toolrule.Check(v); err != nil {
				return exitcode.Usagef("--%s %q: %v (a tool name, or a prefix ending in *)", f.name, v, err)
			}
		}
		*f.dst = vals
	}
	return nil
}
