// Widgets: the ui:// resources hosts render in a sandboxed iframe. A
// widget's HTML comes from widgets/ in one of three ways (see config.ts):
// the Vite dev server, the built assets, or the inline build.

import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { RESOURCE_MIME_TYPE, registerAppResource } from "@modelcontextprotocol/ext-apps/server";
import type { McpServer } from "@modelcontextprotocol/server";
import { type WidgetMode, widgetsDir } from "./config.js";
import { claudeWidgetDomain } from "./public.js";

/**
 * Where a request for a widget came from: the public origin its documents
 * and assets load from (the tunnel's URL behind pomdev up), and whether
 * the host is Claude, which renders widgets on a domain of its own.
 */
export interface Reach {
  origin?: string;
  claude?: boolean;
}

/**
 * Descriptions of the widgets, shown to clients in resources/list. Every
 * widget is offered, described here or not: widgets/src/widgets/<name>.tsx
 * is ui://<name>.
 */
const descriptions: Record<string, string> = {
  echo: "Shows the message the echo tool repeated.",
};

/**
 * widgetNames finds the widgets: the sources in development, the built
 * pages otherwise (a production image has no sources).
 */
export function widgetNames(mode: WidgetMode): string[] {
  const fromDir = (dir: string, ext: string) => {
    try {
      return readdirSync(dir)
        .filter((f) => f.endsWith(ext) && !f.endsWith(`.test${ext}`))
        .map((f) => f.slice(0, -ext.length));
    } catch {
      return [];
    }
  };
  const dir = mode.kind === "dev" ? widgetsDir : mode.dir;
  const names = fromDir(join(dir, "src", "widgets"), ".tsx");
  if (names.length > 0 || mode.kind === "dev") return names.sort();
  return fromDir(join(dir, mode.kind === "inline" ? "dist-inline" : "dist"), ".html").sort();
}

/** Content Security Policy lists a host builds the iframe's policy from. */
export interface WidgetCsp {
  connectDomains: string[];
  resourceDomains: string[];
  baseUriDomains?: string[];
}

export function registerWidgets(server: McpServer, mode: WidgetMode, reach: Reach = {}): void {
  for (const name of widgetNames(mode)) {
    const uri = `ui://${name}`;
    const description = descriptions[name] ?? `The ${name} widget.`;
    registerAppResource(server, `${name} widget`, uri, { description }, async () => {
      const { html, csp } = await widgetHtml(name, mode, reach.origin);
      // CSP on the resource, not the tool: Claude reads it only here.
      const ui: Record<string, unknown> = { csp, prefersBorder: true };
      if (reach.claude && reach.origin) ui.domain = claudeWidgetDomain(`${reach.origin}/mcp`);
      return { contents: [{ uri, mimeType: RESOURCE_MIME_TYPE, text: html, _meta: { ui } }] };
    });
  }
}

/**
 * widgetHtml is a widget's document and the CSP lists for it. Its assets
 * load from origin (where the request came from: the tunnel's URL), under
 * /widgets/: the server serves the built assets there, and in development
 * passes /widgets/ (hot reload's WebSocket too) to the Vite dev server, so
 * a host that renders the widget anywhere reaches them through the same
 * URL as /mcp, never localhost.
 */
export async function widgetHtml(
  name: string,
  mode: WidgetMode,
  origin?: string,
): Promise<{ html: string; csp: WidgetCsp }> {
  switch (mode.kind) {
    case "dev": {
      const url = `${mode.devUrl}/widgets/${name}.html`;
      // The dev server may still be starting (npm run dev starts both at once).
      const deadline = Date.now() + 15_000;
      let res: Response;
      for (;;) {
        try {
          res = await fetch(url);
          break;
        } catch (err) {
          if (Date.now() >= deadline) {
            throw new Error(
              `the widget dev server at ${mode.devUrl} is not reachable (${String(err)}): start it with npm run dev:widgets`,
            );
          }
          await delay(100);
        }
      }
      if (!res.ok) {
        throw new Error(
          `the widget dev server answered ${res.status} for ${url}: is widgets/src/widgets/${name}.tsx there?`,
        );
      }
      const from = origin ?? new URL(mode.devUrl).origin;
      const ws = from.replace(/^http/, "ws");
      return {
        html: withBase(await res.text(), `${from}/widgets/`),
        csp: { connectDomains: [from, ws], resourceDomains: [from], baseUriDomains: [from] },
      };
    }
    case "built": {
      const html = await readWidgetFile(join(mode.dir, "dist", `${name}.html`), "npm run build");
      const from = mode.fixedBase ? new URL(mode.baseUrl).origin : (origin ?? new URL(mode.baseUrl).origin);
      return {
        html: withBase(html, `${from}/widgets/`),
        csp: { connectDomains: [], resourceDomains: [from], baseUriDomains: [from] },
      };
    }
    case "inline": {
      const html = await readWidgetFile(
        join(mode.dir, "dist-inline", `${name}.html`),
        "npm run build:inline --workspace widgets",
        30_000,
      );
      return { html, csp: { connectDomains: [], resourceDomains: [] } };
    }
  }
}

/**
 * readWidgetFile reads a built widget, waiting up to waitMs for it to
 * appear (an inline build started at the same time as the server).
 */
async function readWidgetFile(path: string, buildCommand: string, waitMs = 0): Promise<string> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      if (Date.now() >= deadline) {
        throw new Error(`${path} does not exist: build the widgets first (${buildCommand})`);
      }
      await delay(100);
    }
  }
}

/** withBase makes the document's relative and root-relative URLs resolve against base. */
function withBase(html: string, base: string): string {
  const tag = `<base href="${base}">`;
  return /<head[^>]*>/i.test(html) ? html.replace(/<head[^>]*>/i, (head) => `${head}\n    ${tag}`) : tag + html;
}
