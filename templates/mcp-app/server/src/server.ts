import { McpServer } from "@modelcontextprotocol/server";
import type { WidgetMode } from "./config.js";
import { registerTools } from "./tools.js";
import { appName, appVersion } from "./version.js";
import { type Reach, registerWidgets } from "./widgets.js";

/**
 * createServer builds one MCP server: its tools and its widgets, whose
 * documents point at reach.origin (where the request came from).
 */
export function createServer(widgets: WidgetMode, reach: Reach = {}): McpServer {
  const server = new McpServer(
    { name: appName, version: appVersion },
    { instructions: "Tools of an MCP App. The echo tool shows its result in a widget." },
  );
  registerTools(server);
  registerWidgets(server, widgets, reach);
  return server;
}
