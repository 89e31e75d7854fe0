// Where hosts reach the server: the public origin from a tunnel's
// forwarded headers, and Claude's widget domain.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { claudeWidgetDomain, forClaude, publicOrigin } from "../src/public.js";
import { widgetHtml } from "../src/widgets.js";

test("Claude's widget domain for a known URL", () => {
  // sha256("https://example.com/mcp"), its first 32 hex digits.
  assert.equal(claudeWidgetDomain("https://example.com/mcp"), "c3d80a4ed901ee05b21755a88273b4a4.claudemcpcontent.com");
});

test("the public origin comes from the tunnel's forwarded headers", () => {
  const h = (o: Record<string, string>) => new Headers(o);
  const fallback = "http://localhost:8080";
  assert.equal(
    publicOrigin(
      h({ host: "localhost:8080", "x-forwarded-host": "app.pom.run", "x-forwarded-proto": "https" }),
      fallback,
    ),
    "https://app.pom.run",
  );
  assert.equal(publicOrigin(h({ host: "127.0.0.1:8080" }), fallback), "http://127.0.0.1:8080");
  assert.equal(
    publicOrigin(h({ "x-forwarded-host": "a.example, b.example", "x-forwarded-proto": "https,http" }), fallback),
    "https://a.example",
  );
  // What cannot be a host, or another scheme, is not taken.
  for (const bad of ['evil.example"><script>', "a b", "x/y", "user@host"]) {
    assert.equal(publicOrigin(h({ "x-forwarded-host": bad }), fallback), fallback, bad);
  }
  assert.equal(
    publicOrigin(h({ "x-forwarded-host": "a.example", "x-forwarded-proto": "javascript" }), fallback),
    "http://a.example",
  );
  assert.equal(publicOrigin(undefined, fallback), fallback);
});

test("Claude is told apart by its user agent or client name", () => {
  assert.ok(forClaude(new Headers({ "user-agent": "Claude-User/1.0" })));
  assert.ok(forClaude(undefined, "claude-ai"));
  assert.ok(!forClaude(new Headers({ "user-agent": "openai-mcp/1.0" }), "openai-mcp"));
});

test("a built widget's assets load from the origin the request came to", async () => {
  const dir = await mkdtemp(join(tmpdir(), "built-"));
  try {
    await mkdir(join(dir, "dist"));
    await writeFile(join(dir, "dist", "echo.html"), "<!doctype html><html><head></head><body></body></html>");
    const mode = { kind: "built", dir, baseUrl: "http://localhost:8080" } as const;
    const { html, csp } = await widgetHtml("echo", mode, "https://app.pom.run");
    assert.match(html, /<base href="https:\/\/app\.pom\.run\/widgets\/">/);
    assert.deepEqual(csp.resourceDomains, ["https://app.pom.run"]);
    assert.doesNotMatch(html, /localhost/);
    // BASE_URL set: it wins.
    const fixed = await widgetHtml(
      "echo",
      { ...mode, baseUrl: "https://mcp.example.com", fixedBase: true },
      "https://app.pom.run",
    );
    assert.match(fixed.html, /<base href="https:\/\/mcp\.example\.com\/widgets\/">/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
