import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { renderToStaticMarkup } from "react-dom/server";
import { EchoCard } from "../src/widgets/echo.tsx";

test("echo renders the tool result", () => {
  const html = renderToStaticMarkup(
    <EchoCard result={{ message: "Hello <world>", length: 13, receivedAt: "2026-01-02T03:04:05Z" }} />,
  );
  assert.match(html, /Hello &lt;world&gt;/);
  assert.match(html, /<strong>13<\/strong> characters/);
});

test("echo shows the input while the tool runs, and errors", () => {
  assert.match(renderToStaticMarkup(<EchoCard pending="on its way" />), /aria-busy="true".*on its way/);
  assert.match(renderToStaticMarkup(<EchoCard />), /Waiting for the tool result/);
  assert.match(renderToStaticMarkup(<EchoCard error="boom" />), /class="message error">boom/);
});

test("every widget module exports a component", async () => {
  const files = readdirSync(new URL("../src/widgets", import.meta.url)).filter((f) => f.endsWith(".tsx"));
  assert.ok(files.length > 0);
  for (const f of files) {
    const mod = (await import(`../src/widgets/${f}`)) as { default?: unknown };
    assert.equal(typeof mod.default, "function", `${f} must export default a React component`);
  }
});
