// Entry point: start the HTTP server and stop it cleanly on SIGINT/SIGTERM.

import "./env.js";
import { loadConfig } from "./config.js";
import { createApp } from "./http.js";
import { log } from "./log.js";

const config = loadConfig();
const app = createApp(config);

app.server.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EADDRINUSE") {
    log.fatal(`port ${config.port} is in use: stop the other server or set PORT`);
  } else {
    log.fatal({ err }, "the HTTP server failed");
  }
  process.exit(1);
});

app.server.listen(config.port, config.host, () => {
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  log.info(`MCP server listening on http://${config.host}:${port}/mcp (widgets: ${config.widgets.kind})`);
});

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
