// The HTTP side: MCP Streamable HTTP at /mcp, GET /health, and the built
// widget assets under /widgets/. The MCP endpoint is stateless: every
// request is answered by a fresh server from createServer, for clients of
// protocol 2026-07-28 and, through the SDK's stateless fallback, for
// 2025-era clients (today's hosts). A restart loses nothing a client holds.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { createBrotliCompress, createGzip } from "node:zlib";
import { toNodeHandler } from "@modelcontextprotocol/node";
import { createMcpHandler } from "@modelcontextprotocol/server";
import type { Config } from "./config.js";
import { log } from "./log.js";
import { createServer } from "./server.js";
import { appName, appVersion } from "./version.js";

export interface App {
  server: Server;
  /** close stops the HTTP server and ends open requests. */
  close(): Promise<void>;
}

export function createApp(config: Config): App {
  const started = Date.now();
  const mcp = toNodeHandler(
    createMcpHandler(() => createServer(config.widgets), {
      onerror: (err) => log.warn({ err: err.message }, "MCP request failed"),
    }),
  );

  const server = createHttpServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      if (!hostAllowed(req.headers.host, config)) {
        return sendJson(res, 403, {
          error: `Host ${req.headers.host} is not allowed: this server is bound to ${config.host}`,
        });
      }
      if (url.pathname === "/mcp") {
        return await mcp(req, res);
      }
      if (url.pathname === "/health" && (req.method === "GET" || req.method === "HEAD")) {
        return sendJson(res, 200, {
          status: "ok",
          name: appName,
          version: appVersion,
          widgets: config.widgets.kind,
          uptimeSeconds: Math.round((Date.now() - started) / 1000),
        });
      }
      if (url.pathname.startsWith("/widgets/") && config.widgets.kind === "built" && req.method === "GET") {
        return await serveAsset(req, res, join(config.widgets.dir, "dist"), url.pathname.slice("/widgets/".length));
      }
      sendJson(res, 404, { error: `nothing at ${url.pathname}; the MCP endpoint is /mcp` });
    } catch (err) {
      log.error({ err }, "request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.end();
    }
  });

  return {
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * hostAllowed guards against DNS rebinding: a server bound to loopback
 * answers only requests addressed to a loopback name.
 */
function hostAllowed(host: string | undefined, config: Config): boolean {
  if (!isLoopback(config.host)) return true;
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

async function serveAsset(req: IncomingMessage, res: ServerResponse, root: string, rel: string): Promise<void> {
  const path = normalize(join(root, decodeURIComponent(rel)));
  if (!path.startsWith(root + sep)) return sendJson(res, 404, { error: "not found" });
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return sendJson(res, 404, { error: "not found" });
  const type = contentTypes[extname(path)] ?? "application/octet-stream";
  const headers: Record<string, string | number> = {
    "Content-Type": type,
    // Hashed file names never change content; hosts load them cross-origin.
    "Cache-Control": rel.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache",
    "Access-Control-Allow-Origin": "*",
    Vary: "Accept-Encoding",
  };
  // Text assets (scripts, styles, SVG) are compressed for clients that ask.
  const accepts = String(req.headers["accept-encoding"] ?? "");
  const text = /^(text\/|application\/json|image\/svg)/.test(type) && info.size > 1024;
  const encoding = !text ? "" : /\bbr\b/.test(accepts) ? "br" : /\bgzip\b/.test(accepts) ? "gzip" : "";
  if (encoding === "") {
    res.writeHead(200, { ...headers, "Content-Length": info.size });
    createReadStream(path).pipe(res);
    return;
  }
  res.writeHead(200, { ...headers, "Content-Encoding": encoding });
  const compress = encoding === "br" ? createBrotliCompress() : createGzip();
  pipeline(createReadStream(path), compress, res).catch((err) => log.debug({ err }, "asset not sent"));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}
