// A Vite plugin that turns every src/widgets/<name>.tsx into a widget page:
// /<name>.html on the dev server, dist/<name>.html (content-hashed assets
// beside it) in a build, and one self-contained dist-inline/<name>.html
// (scripts and styles inlined) in an inline build.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Plugin, Rollup } from "vite";

type OutputChunk = Rollup.OutputChunk;
type OutputAsset = Rollup.OutputAsset;

const widgetsDir = "src/widgets";
const entryId = "virtual:widget/";
const resolvedEntryId = "\0" + entryId;

/** discoverWidgets lists the widget names under root/src/widgets. */
export function discoverWidgets(root: string): string[] {
  return readdirSync(join(root, widgetsDir))
    .filter((f) => f.endsWith(".tsx") && !f.endsWith(".test.tsx"))
    .map((f) => f.slice(0, -".tsx".length))
    .sort();
}

export interface WidgetsOptions {
  /** Build self-contained pages: one widget per build (see scripts/build-inline.mjs). */
  inline?: boolean;
  /** Build only this widget. */
  only?: string;
}

export function widgets(options: WidgetsOptions = {}): Plugin {
  let root = process.cwd();
  return {
    name: "widgets",
    config(config) {
      root = config.root ?? root;
      let names = discoverWidgets(root);
      if (options.only) {
        if (!names.includes(options.only)) throw new Error(`no widget ${options.only} in ${widgetsDir}`);
        names = [options.only];
      }
      if (options.inline && names.length !== 1) {
        throw new Error("an inline build takes one widget at a time: set WIDGET (scripts/build-inline.mjs does)");
      }
      const input = Object.fromEntries(names.map((n) => [n, entryId + n]));
      return { build: { rollupOptions: { input } } };
    },
    resolveId(id) {
      return id.startsWith(entryId) ? "\0" + id : undefined;
    },
    load(id) {
      if (!id.startsWith(resolvedEntryId)) return undefined;
      const name = id.slice(resolvedEntryId.length);
      return [
        `import Widget from "/${widgetsDir}/${name}.tsx";`,
        `import { mountWidget } from "/src/lib/mount.tsx";`,
        `mountWidget(Widget);`,
      ].join("\n");
    },
    configureServer(server) {
      // The dev server's base (/widgets/): pages are at /widgets/<name>.html.
      const base = server.config.base;
      server.middlewares.use(async (req, res, next) => {
        const full = (req.url ?? "/").split("?")[0] ?? "/";
        const path = full.startsWith(base) ? `/${full.slice(base.length)}` : full;
        const names = discoverWidgets(root);
        if (full === "/" || path === "/" || path === "/index.html") {
          const links = names.map((n) => `<li><a href="${base}${n}.html">${n}</a></li>`).join("");
          res.setHeader("Content-Type", "text/html; charset=utf-8");
          res.end(page("widgets", "", `<ul>${links}</ul>`));
          return;
        }
        const name = /^\/([\w-]+)\.html$/.exec(path)?.[1];
        if (!name || !names.includes(name) || !full.startsWith(base)) return next();
        const html = await server.transformIndexHtml(
          full,
          page(name, "", `<script type="module" src="/@id/__x00__${entryId}${name}"></script>`),
        );
        res.setHeader("Content-Type", "text/html; charset=utf-8");
        res.end(html);
      });
    },
    generateBundle(_, bundle) {
      const chunks = Object.values(bundle).filter((f): f is OutputChunk => f.type === "chunk");
      for (const chunk of chunks) {
        if (!chunk.isEntry || !chunk.facadeModuleId?.startsWith(resolvedEntryId)) continue;
        const name = chunk.facadeModuleId.slice(resolvedEntryId.length);
        const cssFiles = [...(chunk.viteMetadata?.importedCss ?? [])];
        let head: string;
        let body: string;
        if (options.inline) {
          if (chunks.length !== 1) {
            throw new Error(
              `inline build of ${name} produced ${chunks.length} scripts; avoid dynamic import() in widgets`,
            );
          }
          head = cssFiles
            .map((f) => `<style>${escapeTag(String((bundle[f] as OutputAsset).source), "style")}</style>`)
            .join("\n    ");
          body = `<script type="module">${escapeTag(chunk.code, "script")}</script>`;
          for (const f of [chunk.fileName, ...cssFiles]) delete bundle[f];
        } else {
          head = cssFiles.map((f) => `<link rel="stylesheet" href="./${f}">`).join("\n    ");
          body = `<script type="module" src="./${chunk.fileName}"></script>`;
        }
        this.emitFile({ type: "asset", fileName: `${name}.html`, source: page(name, head, body) });
      }
    },
  };
}

function page(title: string, head: string, body: string): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="color-scheme" content="light dark">
    <title>${title}</title>
    ${head}
  </head>
  <body>
    <div id="root"></div>
    ${body}
  </body>
</html>
`;
}

/** escapeTag keeps inlined code from closing its own element early. */
function escapeTag(code: string, tag: string): string {
  return code.replace(new RegExp(`</(${tag})`, "gi"), "<\\/$1");
}
