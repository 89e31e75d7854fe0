// Settings read from the environment (see .env.example at the app's root).

import { fileURLToPath } from "node:url";

export type WidgetMode =
  // HTML fetched from the Vite dev server (npm run dev): hot reload; the server passes
  // /widgets/ to it, so assets load from wherever /mcp is reached.
  | { kind: "dev"; devUrl: string }
  // Built, content-hashed assets (npm run build), served by this server under /widgets/:
  // from the origin each request came to, or BASE_URL when set (fixedBase).
  | { kind: "built"; dir: string; baseUrl: string; fixedBase?: boolean }
  // One self-contained HTML document per widget (INLINE=1): nothing to load from elsewhere.
  | { kind: "inline"; dir: string };

export interface Config {
  port: number;
  host: string;
  widgets: WidgetMode;
}

/** The widgets workspace, from src/ (tsx) and dist/ (built) alike. */
export const widgetsDir = fileURLToPath(new URL("../../widgets/", import.meta.url));

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = parsePort(env.PORT ?? "8080");
  const host = env.HOST || "127.0.0.1";
  const base = trimSlash(env.BASE_URL || `http://localhost:${port}`);
  let widgets: WidgetMode;
  if (isTrue(env.INLINE)) {
    widgets = { kind: "inline", dir: env.WIDGETS_DIR || widgetsDir };
  } else if (env.WIDGETS_DEV_URL) {
    widgets = { kind: "dev", devUrl: trimSlash(env.WIDGETS_DEV_URL) };
  } else {
    widgets = { kind: "built", dir: env.WIDGETS_DIR || widgetsDir, baseUrl: base, fixedBase: Boolean(env.BASE_URL) };
  }
  return { port, host, widgets };
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number (0-65535), not ${JSON.stringify(value)}`);
  }
  return port;
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && ["1", "true", "yes"].includes(value.toLowerCase());
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}
