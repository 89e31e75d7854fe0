// Development entry (npm run dev:server): widgets come from the Vite dev
// server unless INLINE=1 or WIDGETS_DEV_URL says otherwise.
import "./env.js";

process.env.WIDGETS_DEV_URL ??= `http://localhost:${process.env.WIDGETS_PORT ?? 4444}`;
process.env.LOG_PRETTY ??= "1";
await import("./index.js");
