import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, EchoCard } from "../src/widgets/echo.tsx";

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

test("echo shows its actions and the host's context inside a host", () => {
  const noop = () => {};
  const result = { message: "hi", length: 2, receivedAt: "2026-01-02T03:04:05Z" };
  const context = {
    theme: "dark",
    locale: "fr-FR",
    displayMode: "inline",
    containerDimensions: { maxWidth: 640 },
  } as const;
  const html = renderToStaticMarkup(
    <EchoCard
      result={result}
      shouted="HI"
      context={context}
      actions={{ shout: noop, fullscreen: noop, sendMessage: noop, openDocs: noop }}
    />,
  );
  for (const label of ["Shout it", "Fullscreen", "Say it back", "About MCP Apps"]) {
    assert.match(html, new RegExp(`<button type="button">${label}</button>`));
  }
  assert.match(html, /class="message shouted">HI</);
  assert.equal(describe(context), "dark theme · fr-FR · inline mode · 640px wide");
  // Without fullscreen among the host's modes, no button for it; outside a host, no actions.
  const inline = renderToStaticMarkup(
    <EchoCard result={result} actions={{ shout: noop, sendMessage: noop, openDocs: noop }} />,
  );
  assert.doesNotMatch(inline, /Fullscreen/);
  assert.doesNotMatch(renderToStaticMarkup(<EchoCard result={result} />), /<button/);
  assert.match(renderToStaticMarkup(<EchoCard cancelled />), /The tool call was cancelled/);
});

test("every widget module exports a component", async () => {
  const files = readdirSync(new URL("../src/widgets", import.meta.url)).filter((f) => f.endsWith(".tsx"));
  assert.ok(files.length > 0);
  for (const f of files) {
    const mod = (await import(`../src/widgets/${f}`)) as { default?: unknown };
    assert.equal(typeof mod.default, "function", `${f} must export default a React component`);
  }
});
