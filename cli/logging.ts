/**
 * LogTape set-up for the CLI: everything under the `raftd` category goes to
 * standard error, as text or JSON lines, from the chosen level up.
 *
 * @module
 */

import {
  configure,
  getJsonLinesFormatter,
  getTextFormatter,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";
import { writeStderr } from "../src/platform/process.ts";
import { UsageError } from "./args.ts";

/** Levels accepted by `--log-level`. */
const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

/** Formats accepted by `--log-format`. */
const LOG_FORMATS = ["text", "json"] as const;

/**
 * Route `raftd` logs to stderr at `level` and above.
 *
 * @example
 * ```ts
 * import { setupLogging } from "./logging.ts";
 * await setupLogging("raftd serve", "warning", "text");
 * ```
 */
export async function setupLogging(command: string, level: string, format: string): Promise<void> {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(
      `${command}: --log-level must be one of ${LOG_LEVELS.join(", ")}, got ${
        JSON.stringify(level)
      }`,
    );
  }
  if (!(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(
      `${command}: --log-format must be text or json, got ${JSON.stringify(format)}`,
    );
  }
  const formatter = format === "json"
    ? getJsonLinesFormatter({ categorySeparator: ".", message: "rendered", properties: "flatten" })
    : getTextFormatter({
      timestamp: "date-time-tz",
      category: ".",
      // Strings read better unquoted in a one-line log message.
      value: (v, inspect) => typeof v === "string" ? v : inspect(v),
    });
  const sink = (record: LogRecord) => writeStderr(formatter(record));
  await configure({
    reset: true,
    sinks: { stderr: sink },
    loggers: [
      { category: ["raftd"], lowestLevel: level as LogLevel, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
