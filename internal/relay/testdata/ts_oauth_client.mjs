// The official TypeScript MCP SDK's client through a gated relay, for
// TestOAuthTypeScriptSDK: StreamableHTTPClientTransport with an
// OAuthClientProvider (discovery, dynamic registration, PKCE, token
// exchange). It prints "AUTHORIZE <url>" when the SDK sends the user to
// the authorize page, reads the URL the browser came back to on stdin,
// finishes the flow, then lists and calls tools and prints "RESULT <json>".
//
// node ts_oauth_client.mjs SDK_DIR MCP_URL
import "../../peertest/localhost_dns.mjs"; // *.localhost is this machine
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const [sdkDir, mcpURL] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(`${sdkDir}/dist/esm/${p}`).href);
const { Client } = await load("client/index.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
const { UnauthorizedError } = await load("client/auth.js");


const redirectUrl = "http://127.0.0.1:9/callback";
const store = {};
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return { client_name: "TS SDK test host", redirect_uris: [redirectUrl], grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"], token_endpoint_auth_method: "none" };
  },
  clientInformation() { return store.client; },
  saveClientInformation(c) { store.client = c; },
  tokens() { return store.tokens; },
  saveTokens(t) { store.tokens = t; },
  redirectToAuthorization(url) { console.log(`AUTHORIZE ${url.href}`); },
  saveCodeVerifier(v) { store.verifier = v; },
  codeVerifier() { return store.verifier; },
};

const rl = createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
const connect = async () => {
  const transport = new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider });
  const client = new Client({ name: "ts-host", version: "1" });
  await client.connect(transport);
  return client;
};

let client;
try {
  client = await connect();
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
  const back = new URL((await lines.next()).value);
  const code = back.searchParams.get("code");
  if (!code) throw new Error(`came back without a code: ${back}`);
  const transport = new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider });
  await transport.finishAuth(code);
  client = await connect();
}
const tools = await client.listTools();
const call = await client.callTool({ name: "echo", arguments: { text: "from ts" } });
console.log(`RESULT ${JSON.stringify({ tools: tools.tools.map((t) => t.name), text: call.content[0].text, refresh: !!store.tokens.refresh_token })}`);
await client.close();
rl.close();
