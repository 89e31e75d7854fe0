import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";
import { widgets } from "./scripts/widgets-plugin.ts";

// Every src/widgets/<name>.tsx is a widget: served at /<name>.html by the
// dev server and built to dist/<name>.html (dist-inline/ in inline mode).
export default defineConfig(({ mode }) => ({
  base: "./",
  plugins: [react(), widgets({ inline: mode === "inline", only: process.env.WIDGET })],
  server: {
    host: "127.0.0.1",
    port: 4444,
    strictPort: true,
    // Hosts load the widget's modules from this server into a sandboxed
    // iframe on their own origin, so the dev server must allow it.
    origin: "http://localhost:4444",
    cors: { origin: true },
  },
  build: {
    outDir: mode === "inline" ? "dist-inline" : "dist",
    emptyOutDir: mode !== "inline",
    sourcemap: mode !== "inline",
  },
}));
