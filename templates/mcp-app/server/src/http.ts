// The HTTP side: MCP Streamable HTTP at /mcp with one MCP session per
// client, GET /health, and the built widget assets under /widgets/.

import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { Config } from "./config.js";
import { createServer } from "./server.js";
import { appName, appVersion } from "./version.js";

interface Session {
  transport: StreamableHTTPServerTransport;
  lastSeen: number;
}

export interface App {
  server: Server;
  /** Open MCP sessions, by id. */
  sessions: Map<string, Session>;
  /** close ends every session and stops the HTTP server. */
  close(): Promise<void>;
}

const maxBodyBytes = 4 << 20;

export function createApp(config: Config): App {
  const sessions = new Map<string, Session>();
  const started = Date.now();

  const server = createHttpServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      if (!hostAllowed(req, config)) {
        return sendJson(res, 403, {
          error: `Host ${req.headers.host} is not allowed: this server is bound to ${config.host}`,
        });
      }
      if (url.pathname === "/mcp") {
        return await handleMcp(req, res);
      }
      if (url.pathname === "/health" && (req.method === "GET" || req.method === "HEAD")) {
        return sendJson(res, 200, {
          status: "ok",
          name: appName,
          version: appVersion,
          widgets: config.widgets.kind,
          sessions: sessions.size,
          uptimeSeconds: Math.round((Date.now() - started) / 1000),
        });
      }
      if (url.pathname.startsWith("/widgets/") && config.widgets.kind === "built" && req.method === "GET") {
        return await serveAsset(res, join(config.widgets.dir, "dist"), url.pathname.slice("/widgets/".length));
      }
      sendJson(res, 404, { error: `nothing at ${url.pathname}; the MCP endpoint is /mcp` });
    } catch (err) {
      console.error("request failed:", err);
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.end();
    }
  });

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = req.headers["mcp-session-id"];
    const sessionId = Array.isArray(id) ? id[0] : id;
    const body = req.method === "POST" ? await readJson(req, res) : undefined;
    if (body === invalid) return;

    if (sessionId) {
      const session = sessions.get(sessionId);
      if (!session) {
        // Unknown or expired: the client must initialize a new session.
        return sendJson(res, 404, { jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null });
      }
      session.lastSeen = Date.now();
      return session.transport.handleRequest(req, res, body);
    }
    if (req.method !== "POST" || !isInitializeRequest(body)) {
      return sendJson(res, 400, {
        jsonrpc: "2.0",
        error: { code: -32000, message: "Bad Request: send initialize first, then the Mcp-Session-Id header" },
        id: null,
      });
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (newId) => {
        sessions.set(newId, { transport, lastSeen: Date.now() });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    const mcp = createServer(config.widgets);
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  // Close sessions nobody used for a while.
  const sweep = setInterval(
    () => {
      const cutoff = Date.now() - config.sessionIdleMs;
      for (const [, session] of sessions) {
        if (session.lastSeen < cutoff) void session.transport.close();
      }
    },
    Math.min(config.sessionIdleMs, 60_000),
  );
  sweep.unref();

  return {
    server,
    sessions,
    async close() {
      clearInterval(sweep);
      await Promise.all([...sessions.values()].map((s) => s.transport.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const invalid = Symbol("invalid");

async function readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) {
      sendJson(res, 413, { jsonrpc: "2.0", error: { code: -32600, message: "request body too large" }, id: null });
      return invalid;
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    sendJson(res, 400, {
      jsonrpc: "2.0",
      error: { code: -32700, message: "Parse error: the body is not JSON" },
      id: null,
    });
    return invalid;
  }
}

/**
 * hostAllowed guards against DNS rebinding: a server bound to loopback
 * answers only requests addressed to a loopback name.
 */
function hostAllowed(req: IncomingMessage, config: Config): boolean {
  if (!isLoopback(config.host)) return true;
  const host = req.headers.host;
  if (!host) return false;
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0];
  return name !== undefined && isLoopback(name);
}

function isLoopback(name: string): boolean {
  return name === "localhost" || name === "[::1]" || name === "::1" || name.startsWith("127.");
}

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
  ".json": "application/json",
  ".map": "application/json",
};

async function serveAsset(res: ServerResponse, root: string, rel: string): Promise<void> {
  const path = normalize(join(root, decodeURIComponent(rel)));
  if (!path.startsWith(root + sep)) return sendJson(res, 404, { error: "not found" });
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return sendJson(res, 404, { error: "not found" });
  res.writeHead(200, {
    "Content-Type": contentTypes[extname(path)] ?? "application/octet-stream",
    "Content-Length": info.size,
    // Hashed file names never change content; hosts load them cross-origin.
    "Cache-Control": rel.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache",
    "Access-Control-Allow-Origin": "*",
  });
  createReadStream(path).pipe(res);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}
