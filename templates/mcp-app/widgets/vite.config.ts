import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";
import { widgets } from "./scripts/widgets-plugin.ts";

const port = Number(process.env.WIDGETS_PORT ?? 4444);

// Every src/widgets/<name>.tsx is a widget: served at /widgets/<name>.html
// by the dev server and built to dist/<name>.html (dist-inline/ in inline
// mode). The MCP server serves /widgets/ itself and, in development, passes
// it to this dev server (base /widgets/), so hosts load widgets, their
// modules and hot reload from the same URL as /mcp (the tunnel's).
// --mode gallery serves and builds the gallery (gallery.html) instead.
export default defineConfig(({ mode, command }) =>
  mode === "gallery"
    ? {
        base: "./",
        plugins: [react()],
        server: { host: "127.0.0.1", port, strictPort: true },
        build: { outDir: "dist-gallery", rollupOptions: { input: "gallery.html" }, chunkSizeWarningLimit: 1024 },
      }
    : {
        base: command === "serve" ? "/widgets/" : "./",
        plugins: [react(), widgets({ inline: mode === "inline", only: process.env.WIDGET })],
        // The widgets are virtual modules, which Vite's start-up scan cannot
        // see: scan the sources, so dependencies are bundled before the first
        // page load instead of during it (which reloads the page).
        optimizeDeps: { entries: ["src/**/*.{ts,tsx}"] },
        server: {
          host: "127.0.0.1",
          port,
          strictPort: true,
          // Hosts load the widget's modules into a sandboxed iframe on
          // their own origin, so the dev server must allow it.
          cors: { origin: true },
          // What the dev server may read: the widgets and the packages.
          // Through a tunnel /widgets/ is public (hosts' frames send no
          // credentials), so the server's sources and .env stay out of reach.
          fs: { strict: true, allow: [".", "../node_modules"] },
        },
        build: {
          outDir: mode === "inline" ? "dist-inline" : "dist",
          emptyOutDir: mode !== "inline",
          sourcemap: mode !== "inline",
          // React and the MCP Apps client make a widget ~650 kB (~180 kB gzipped).
          chunkSizeWarningLimit: 1024,
        },
      },
);
