// Every widget fixture of the gallery is accessible: rendered to HTML,
// loaded into a DOM (jsdom) and checked with axe-core in both themes.
// Colour contrast needs a browser's layout, which jsdom has not: that rule
// is left to the gallery in a browser (npm run gallery, axe DevTools).

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";
import { JSDOM } from "jsdom";
import type { ComponentType } from "react";
import { renderToStaticMarkup } from "react-dom/server";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

interface GalleryModule {
  View?: ComponentType<Record<string, unknown>>;
  fixtures?: { name: string; props: Record<string, unknown> }[];
}

const files = readdirSync(new URL("../src/widgets", import.meta.url)).filter((f) => f.endsWith(".tsx"));

for (const file of files) {
  test(`${file}: every fixture passes axe, light and dark`, async () => {
    const mod = (await import(`../src/widgets/${file}`)) as GalleryModule;
    assert.ok(mod.View && mod.fixtures?.length, `${file} exports View and fixtures for the gallery`);
    const View = mod.View;
    for (const f of mod.fixtures) {
      for (const theme of ["light", "dark"]) {
        const body = renderToStaticMarkup(<View {...f.props} />);
        const dom = new JSDOM(
          `<!doctype html><html lang="en" data-theme="${theme}"><head><title>${f.name}</title></head><body><main>${body}</main></body></html>`,
          { runScripts: "outside-only" },
        );
        dom.window.eval(axeSource);
        const axe = (dom.window as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<AxeResults> } })
          .axe;
        const results = await axe.run(dom.window.document, { rules: { "color-contrast": { enabled: false } } });
        const found = results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.html).join(", ")})`);
        // (The array comes from the DOM's realm: compare its contents.)
        assert.equal(found.length, 0, `${file} ${f.name} (${theme}): ${found.join("; ")}`);
        dom.window.close();
      }
    }
  });
}

interface AxeResults {
  violations: { id: string; help: string; nodes: { html: string }[] }[];
}
