// The server's logger (pino): JSON lines with the level from LOG_LEVEL
// (trace, debug, info, warn, error; info by default). In development
// (npm run dev, pomdev up) LOG_PRETTY=1 prints them as plain lines.
import { pino } from "pino";

const level = process.env.LOG_LEVEL || "info";

export const log =
  process.env.LOG_PRETTY === "1"
    ? pino({
        level,
        transport: {
          target: "pino-pretty",
          options: { colorize: false, ignore: "pid,hostname,time", singleLine: true },
        },
      })
    : pino({ level });
