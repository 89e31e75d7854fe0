// The HTTP side: MCP Streamable HTTP at /mcp, GET /health, and the widget
// assets under /widgets/: the built ones, or in development the Vite dev
// server's, passed through (its hot-reload WebSocket too), so that one URL
// serves everything a host loads. The MCP endpoint is stateless: every
// request is answered by a fresh server from createServer, for clients of
// protocol 2026-07-28 and, through the SDK's stateless fallback, for
// 2025-era clients (today's hosts). A restart loses nothing a client holds.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { connect, type Socket } from "node:net";
import { extname, join, normalize, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { createBrotliCompress, createGzip } from "node:zlib";
import { toNodeHandler } from "@modelcontextprotocol/node";
import { createMcpHandler } from "@modelcontextprotocol/server";
import type { Config } from "./config.js";
import { log } from "./log.js";
import { forClaude, publicOrigin } from "./public.js";
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
    createMcpHandler(
      ({ requestInfo }) =>
        createServer(config.widgets, {
          origin: publicOrigin(requestInfo?.headers, `http://localhost:${config.port}`),
          claude: forClaude(requestInfo?.headers),
        }),
      {
        onerror: (err) => log.warn({ err: err.message }, "MCP request failed"),
      },
    ),
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
      if (
        url.pathname.startsWith("/widgets/") &&
        config.widgets.kind === "dev" &&
        (req.method === "GET" || req.method === "HEAD")
      ) {
        return passToDevServer(req, res, config.widgets.devUrl);
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

  // Vite's hot reload: the WebSocket under /widgets/ goes to the dev server.
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (config.widgets.kind !== "dev" || !path.startsWith("/widgets/") || !hostAllowed(req.headers.host, config)) {
      socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const dev = new URL(config.widgets.devUrl);
    const upstream = connect(Number(dev.port || 80), dev.hostname);
    const drop = () => {
      socket.destroy();
      upstream.destroy();
    };
    upstream.on("error", drop);
    socket.on("error", drop);
    upstream.on("connect", () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`, `Host: ${dev.host}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i] ?? "";
        if (!/^(host|x-forwarded-.*|forwarded)$/i.test(name)) lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
      }
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
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

/**
 * passToDevServer answers a GET or HEAD under /widgets/ with the Vite dev
 * server's answer (its base is /widgets/ too).
 */
function passToDevServer(req: IncomingMessage, res: ServerResponse, devUrl: string): Promise<void> {
  const dev = new URL(devUrl);
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !/^(host|connection|x-forwarded-.*|forwarded)$/i.test(name)) headers[name] = value;
  }
  headers.host = dev.host;
  return new Promise((resolve) => {
    const up = httpRequest(
      { host: dev.hostname, port: dev.port || 80, method: req.method, path: req.url, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on("end", resolve);
        answer.on("error", () => resolve());
      },
    );
    up.on("error", (err) => {
      if (!res.headersSent) {
        sendJson(res, 502, {
          error: `the widget dev server at ${devUrl} is not reachable (${err.message}): is npm run dev:widgets running?`,
        });
      } else res.destroy();
      resolve();
    });
    up.end();
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}
