// An MCP client round trip over HTTP on a random port, with the SDK's client.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type App, createApp } from "../src/http.js";

let app: App;
let base: string;
let widgetsDir: string;

before(async () => {
  widgetsDir = await mkdtemp(join(tmpdir(), "widgets-"));
  await mkdir(join(widgetsDir, "dist-inline"));
  await writeFile(
    join(widgetsDir, "dist-inline", "echo.html"),
    "<!doctype html><html><head></head><body>echo</body></html>",
  );
  app = createApp({ port: 0, host: "127.0.0.1", widgets: { kind: "inline", dir: widgetsDir }, sessionIdleMs: 60_000 });
  await new Promise<void>((resolve) => app.server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

after(async () => {
  await app.close();
  await rm(widgetsDir, { recursive: true, force: true });
});

async function connect(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client(
    { name: "http-test", version: "1.0.0" },
    // Advertise MCP Apps support, as hosts that render widgets do.
    {
      capabilities: {
        extensions: { "io.modelcontextprotocol/ui": { mimeTypes: ["text/html;profile=mcp-app"] } },
      } as never,
    },
  );
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`));
  await client.connect(transport);
  return { client, transport };
}

test("health answers JSON", async () => {
  const res = await fetch(`${base}/health`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { status: string; widgets: string };
  assert.equal(body.status, "ok");
  assert.equal(body.widgets, "inline");
});

test("list tools, call echo and read its widget over HTTP", async () => {
  const { client, transport } = await connect();
  try {
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === "echo"));
    const result = await client.callTool({ name: "echo", arguments: { message: "over http" } });
    assert.deepEqual(result.content, [{ type: "text", text: "over http" }]);
    const { resources } = await client.listResources();
    assert.deepEqual(
      resources.map((r) => r.uri),
      ["ui://echo"],
    );
    const read = await client.readResource({ uri: "ui://echo" });
    const content = read.contents[0] as { mimeType?: string; text?: string; _meta?: { ui?: { csp?: unknown } } };
    assert.equal(content.mimeType, "text/html;profile=mcp-app");
    assert.match(content.text ?? "", /^<!doctype html>/i);
    assert.deepEqual(content._meta?.ui?.csp, { connectDomains: [], resourceDomains: [] });
    assert.equal(app.sessions.size, 1);
  } finally {
    await transport.terminateSession();
    await client.close();
  }
  assert.equal(app.sessions.size, 0, "DELETE ends the session");
});

test("an ended session answers 404", async () => {
  const { client, transport } = await connect();
  const id = transport.sessionId;
  assert.ok(id);
  await transport.terminateSession();
  await client.close();
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "Mcp-Session-Id": id,
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  assert.equal(res.status, 404);
});

test("requests without a session must initialize first", async () => {
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  assert.equal(res.status, 400);
  const bad = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{not json",
  });
  assert.equal(bad.status, 400);
});

test("a foreign Host is refused", async () => {
  const { request } = await import("node:http");
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${base}/health`, { headers: { Host: "evil.example:80" } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
  assert.equal(status, 403);
});

test("an idle session expires: it is closed and then answered 404", async () => {
  const short = createApp({
    port: 0,
    host: "127.0.0.1",
    widgets: { kind: "inline", dir: widgetsDir },
    sessionIdleMs: 50,
  });
  await new Promise<void>((resolve) => short.server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(short.server.address() as AddressInfo).port}/mcp`;
  try {
    const client = new Client({ name: "idle-test", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    const id = transport.sessionId;
    assert.ok(id);
    assert.equal(short.sessions.size, 1);
    const deadline = Date.now() + 5_000;
    while (short.sessions.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(short.sessions.size, 0, "the idle session was not closed");
    const res = await fetch(url, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
        "Mcp-Session-Id": id,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    assert.equal(res.status, 404);
    await client.close();
  } finally {
    await short.close();
  }
});
