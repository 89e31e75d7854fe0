// MCP over HTTP on a random port, with the official SDK's client in both
// protocol eras: 2026-07-28 (server/discover, no sessions) and 2025-11-25
// (initialize), as today's hosts speak it.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { Config } from "../src/config.js";
import { type App, createApp } from "../src/http.js";

let app: App;
let base: string;
let widgetsDir: string;

async function listen(a: App): Promise<string> {
  await new Promise<void>((resolve) => a.server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(a.server.address() as AddressInfo).port}`;
}

before(async () => {
  widgetsDir = await mkdtemp(join(tmpdir(), "widgets-"));
  await mkdir(join(widgetsDir, "dist-inline"));
  await writeFile(
    join(widgetsDir, "dist-inline", "echo.html"),
    "<!doctype html><html><head></head><body>echo</body></html>",
  );
  const config: Config = { port: 0, host: "127.0.0.1", widgets: { kind: "inline", dir: widgetsDir } };
  app = createApp(config);
  base = await listen(app);
});

after(async () => {
  await app.close();
  await rm(widgetsDir, { recursive: true, force: true });
});

/** connect opens a client with the given protocol version negotiation. */
async function connect(url: string, negotiation: "auto" | "legacy"): Promise<Client> {
  const client = new Client(
    { name: "http-test", version: "1.0.0" },
    {
      // Advertise MCP Apps support, as hosts that render widgets do.
      capabilities: {
        extensions: { "io.modelcontextprotocol/ui": { mimeTypes: ["text/html;profile=mcp-app"] } },
      } as never,
      versionNegotiation: { mode: negotiation },
    },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
  return client;
}

test("health answers JSON", async () => {
  const res = await fetch(`${base}/health`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { status: string; widgets: string };
  assert.equal(body.status, "ok");
  assert.equal(body.widgets, "inline");
});

for (const [era, negotiation] of [
  // A client that probes for 2026-07-28 (server/discover), and one of the
  // 2025 sequence (initialize), the SDK's default and today's hosts'.
  ["2026-07-28", "auto"],
  ["2025-11-25", "legacy"],
] as const) {
  test(`protocol ${era}: list tools, call echo and read its widget`, async () => {
    const client = await connect(base, negotiation);
    try {
      assert.equal(client.getNegotiatedProtocolVersion(), era);
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
    } finally {
      await client.close();
    }
  });
}

test("built assets are compressed for clients that ask, and cached for good", async () => {
  const dir = await mkdtemp(join(tmpdir(), "built-"));
  await mkdir(join(dir, "dist", "assets"), { recursive: true });
  const js = `export const greeting = ${JSON.stringify("hello ".repeat(1000))};\n`;
  await writeFile(join(dir, "dist", "assets", "echo-1a2b.js"), js);
  const built = createApp({ port: 0, host: "127.0.0.1", widgets: { kind: "built", dir, baseUrl: "http://127.0.0.1" } });
  const url = await listen(built);
  try {
    for (const encoding of ["br", "gzip"]) {
      const { request } = await import("node:http");
      const res = await new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
        const req = request(
          `${url}/widgets/assets/echo-1a2b.js`,
          { headers: { "Accept-Encoding": encoding } },
          resolve,
        );
        req.on("error", reject);
        req.end();
      });
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      assert.equal(res.headers["content-encoding"], encoding);
      assert.match(String(res.headers["cache-control"]), /immutable/);
      assert.ok(body.length < js.length / 4, `${encoding}: ${body.length} bytes of ${js.length}`);
      const { brotliDecompressSync, gunzipSync } = await import("node:zlib");
      assert.equal((encoding === "br" ? brotliDecompressSync(body) : gunzipSync(body)).toString(), js);
    }
    // fetch asks for compression and decodes it.
    const plain = await fetch(`${url}/widgets/assets/echo-1a2b.js`);
    assert.equal(await plain.text(), js);
  } finally {
    await built.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("a body that is not JSON is refused", async () => {
  const bad = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream" },
    body: "{not json",
  });
  assert.ok(bad.status >= 400 && bad.status < 500, `status ${bad.status}`);
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

test("in development /widgets/ is the dev server's, its WebSocket too", async () => {
  const { createServer: createHttp, request } = await import("node:http");
  const seen: string[] = [];
  const dev = createHttp((req, res) => {
    seen.push(`${req.method} ${req.url} host=${req.headers.host} fwd=${req.headers["x-forwarded-host"] ?? ""}`);
    res.writeHead(200, { "Content-Type": "text/javascript" });
    res.end("export default 1;");
  });
  dev.on("upgrade", (req, socket) => {
    seen.push(`UPGRADE ${req.url}`);
    socket.end("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello");
  });
  await new Promise<void>((resolve) => dev.listen(0, "127.0.0.1", resolve));
  const devUrl = `http://127.0.0.1:${(dev.address() as AddressInfo).port}`;
  const app = createApp({ port: 0, host: "127.0.0.1", widgets: { kind: "dev", devUrl } });
  const url = await listen(app);
  try {
    const res = await fetch(`${url}/widgets/src/echo.tsx?t=1`, { headers: { "X-Forwarded-Host": "app.pom.run" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/javascript");
    assert.equal(await res.text(), "export default 1;");
    assert.equal((await fetch(`${url}/widgets/x`, { method: "POST" })).status, 404);
    const upgraded = await new Promise<string>((resolve, reject) => {
      const req = request(`${url}/widgets/?token=t`, { headers: { Connection: "Upgrade", Upgrade: "websocket" } });
      req.on("upgrade", (r, socket, head) => {
        socket.destroy();
        resolve(`${r.statusCode} ${head.toString()}`);
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(upgraded, "101 hello");
    assert.deepEqual(seen, [
      `GET /widgets/src/echo.tsx?t=1 host=${new URL(devUrl).host} fwd=`,
      "UPGRADE /widgets/?token=t",
    ]);
  } finally {
    await app.close();
    dev.closeAllConnections();
    await new Promise<void>((resolve) => dev.close(() => resolve()));
  }
});
