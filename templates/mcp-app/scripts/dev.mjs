// npm run dev: the widget dev server and the MCP server side by side, with
// their output prefixed; Ctrl-C (or either one exiting) stops both, with
// everything they started.
// npm run dev:inline: the inline widget build in watch mode and the server
// serving self-contained widgets (INLINE=1).

import { spawn } from "node:child_process";

const inline = process.argv.includes("--inline");
const windows = process.platform === "win32";
const npm = windows ? "npm.cmd" : "npm";
const jobs = [
  { name: "widgets", args: ["run", inline ? "dev:inline" : "dev", "--workspace", "widgets"], env: {} },
  { name: "server", args: ["run", "dev", "--workspace", "server"], env: inline ? { INLINE: "1" } : {} },
];

let stopping = false;
const children = jobs.map((job) => {
  // Each job in its own process group, so stopping it stops what npm started.
  const child = spawn(npm, job.args, {
    env: { ...process.env, ...job.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: !windows,
    shell: windows,
  });
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (data) => {
      const lines = (rest + data).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) console.log(`[${job.name}] ${line}`);
    });
  }
  child.on("exit", (code, signal) => {
    if (!stopping) console.log(`[${job.name}] exited (${signal ?? code})`);
    stop(code ?? 1);
  });
  return child;
});

function stop(code) {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    try {
      if (windows) child.kill();
      else process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
}
process.on("SIGINT", () => stop(130));
process.on("SIGTERM", () => stop(143));
