// Where hosts reach this server: the public origin widget documents and
// their assets are loaded from, and Claude's widget domain, which is
// derived from the public MCP URL.

import { createHash } from "node:crypto";

/**
 * publicOrigin is the origin a request arrived at. Behind a tunnel
 * (pomdev up, pom.run, pomdev relay) the relay names the host the client
 * used in X-Forwarded-Host and its scheme in X-Forwarded-Proto; without
 * them, the request's own Host. BASE_URL (set) wins over both: a
 * deployment behind a proxy that rewrites these headers names its origin.
 * Only a well-formed host[:port] and http(s) are taken, so a header cannot
 * put markup or another scheme into a widget document.
 */
export function publicOrigin(headers: Headers | undefined, fallback: string): string {
  if (!headers) return fallback;
  const first = (v: string | null) => v?.split(",")[0]?.trim() ?? "";
  const host = first(headers.get("x-forwarded-host")) || first(headers.get("host"));
  let proto = first(headers.get("x-forwarded-proto")).toLowerCase();
  if (!/^(?:[a-z0-9-]+\.)*[a-z0-9-]+(?::\d{1,5})?$|^\[[0-9a-f:.]+\](?::\d{1,5})?$/i.test(host)) return fallback;
  if (proto !== "http" && proto !== "https") proto = "http";
  return `${proto}://${host.toLowerCase()}`;
}

/**
 * claudeWidgetDomain is the dedicated domain Claude renders this server's
 * widgets on: the first 32 hex digits of the SHA-256 of the server's MCP
 * endpoint URL, under claudemcpcontent.com. Source: as reported in
 * modelcontextprotocol/ext-apps#671 (a _meta.ui.domain with another value
 * makes Claude print the one it expects). The rule lives here alone, so
 * it can change when Claude's does.
 */
export function claudeWidgetDomain(mcpUrl: string): string {
  return `${createHash("sha256").update(mcpUrl).digest("hex").slice(0, 32)}.claudemcpcontent.com`;
}

/**
 * forClaude reports whether a request comes from Claude, which alone reads
 * _meta.ui.domain as its {hash}.claudemcpcontent.com domain (ChatGPT reads
 * the same field as an origin: a Claude domain there is wrong). Claude's
 * requests name it in their User-Agent or their client name ("claude-ai").
 */
export function forClaude(headers: Headers | undefined, clientName?: string): boolean {
  return /claude/i.test(headers?.get("user-agent") ?? "") || /claude/i.test(clientName ?? "");
}
