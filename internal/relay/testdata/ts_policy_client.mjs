// The official TypeScript MCP SDK's client (protocol 2025-11-25: a session,
// SSE answers) through a relay route with a tool policy, for
// TestToolPolicyTypeScriptSDK. It lists the tools page by page, calls echo,
// tries the tools named on the command line, and prints
// "RESULT {tools, echo, denied: {tool: error message}}".
//
// node ts_policy_client.mjs SDK_DIR MCP_URL
import "../../peertest/localhost_dns.mjs"; // *.localhost is this machine
import { pathToFileURL } from "node:url";

const [sdkDir, mcpURL] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(`${sdkDir}/dist/esm/${p}`).href);
const { Client } = await load("client/index.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");


const client = new Client({ name: "ts-policy-host", version: "1" });
await client.connect(new StreamableHTTPClientTransport(new URL(mcpURL)));
const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);
const echo = await client.callTool({ name: "echo", arguments: { text: "ts" } });
const denied = {};
for (const name of ["delete_all", "search"]) {
  try {
    const res = await client.callTool({ name, arguments: { text: "x" } });
    denied[name] = `called: ${JSON.stringify(res)}`;
  } catch (e) {
    denied[name] = String(e?.message ?? e);
  }
}
console.log(`RESULT ${JSON.stringify({ tools, echo: echo.content[0].text, denied })}`);
await client.close();
