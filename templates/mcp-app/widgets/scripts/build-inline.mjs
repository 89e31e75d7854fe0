// Builds one self-contained HTML page per widget into dist-inline/, for
// hosts that cannot load widget assets from elsewhere (Claude.ai). With
// --watch it rebuilds a widget whenever its sources change.

import { readdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "vite";

const root = fileURLToPath(new URL("..", import.meta.url));
const watch = process.argv.includes("--watch");
const names = readdirSync(new URL("../src/widgets", import.meta.url))
  .filter((f) => f.endsWith(".tsx") && !f.endsWith(".test.tsx"))
  .map((f) => f.slice(0, -".tsx".length));

rmSync(new URL("../dist-inline", import.meta.url), { recursive: true, force: true });
for (const name of names) {
  // vite.config.ts reads WIDGET when it is loaded, once per build.
  process.env.WIDGET = name;
  await build({
    root,
    mode: "inline",
    logLevel: "warn",
    build: { watch: watch ? {} : null },
  });
  console.log(`built dist-inline/${name}.html`);
}
if (watch) console.log("watching src/ for changes (Ctrl-C to stop)");
