// An MCP server as the official TypeScript SDK's Express app makes one
// (createMcpExpressApp: express.json(), so body-parser decodes the body in
// the charset its Content-Type names), stateless with JSON answers, with
// the tools echo and exec_cmd. GET /calls says how often each ran. For
// TestToolPolicyCharsetExpress.
//
// node --require loopback.cjs ts_express_server.mjs SDK_DIR
import { pathToFileURL } from "node:url";

const [sdkDir] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(`${sdkDir}/dist/esm/${p}`).href);
const { McpServer } = await load("server/mcp.js");
const { StreamableHTTPServerTransport } = await load("server/streamableHttp.js");
const { createMcpExpressApp } = await load("server/express.js");

const calls = { echo: 0, exec_cmd: 0 };
function server() {
  const s = new McpServer({ name: "express-app", version: "1" });
  for (const name of Object.keys(calls)) {
    s.registerTool(name, { description: name }, async () => {
      calls[name]++;
      return { content: [{ type: "text", text: `${name} ran` }] };
    });
  }
  return s;
}

// Bound to all interfaces as far as the SDK knows (no Host check: the
// relay forwards the public Host); loopback.cjs binds 127.0.0.1.
const app = createMcpExpressApp({ host: "0.0.0.0" });
app.post("/mcp", async (req, res) => {
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on("close", () => transport.close());
  await server().connect(transport);
  await transport.handleRequest(req, res, req.body);
});
app.get("/calls", (req, res) => res.json(calls));
app.listen(Number(process.env.PORT || 0), "127.0.0.1");
