/**
 * Where raftd writes what it does. Every part of the library logs through a
 * {@linkcode Logger}; by default that is LogTape's logger of a category under
 * `"raftd"` (`["raftd", "raft"]`, `["raftd", "transport"]`,
 * `["raftd", "storage"]`), which stays silent until the application
 * configures LogTape.
 *
 * @example See what a node does: route the `raftd` category to the console
 * ```ts
 * import { configure, getConsoleSink } from "@logtape/logtape";
 * await configure({
 *   sinks: { console: getConsoleSink() },
 *   loggers: [
 *     { category: "raftd", lowestLevel: "info", sinks: ["console"] },
 *     { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
 *   ],
 *   reset: true,
 * });
 * await configure({ sinks: {}, loggers: [], reset: true }); // silent again
 * ```
 *
 * @module
 */

/**
 * What raftd needs from a logger: four levels, each taking a message and
 * structured properties. Messages use LogTape's placeholders
 * (`"elected in term {term}"` with `{ term: 3 }`), so a LogTape `Logger` fits
 * as it is; any other logger fits with a small adapter.
 *
 * @example A logger that prints warnings and errors to the console
 * ```ts
 * import type { Logger } from "./logger.ts";
 * const render = (message: string, properties: Record<string, unknown> = {}) =>
 *   message.replace(/\{(\w+)\}/g, (_, key: string) => String(properties[key]));
 * const logger: Logger = {
 *   debug() {},
 *   info() {},
 *   warn: (message, properties) => console.warn(render(message, properties)),
 *   error: (message, properties) => console.error(render(message, properties)),
 * };
 * logger.warn("peer {peer} unreachable", { peer: "n2" }); // peer n2 unreachable
 * ```
 */
export interface Logger {
  /** Detail useful while debugging: each connection, each snapshot chunk. */
  debug(message: string, properties?: Record<string, unknown>): void;
  /** Milestones: elections won, membership changes, snapshots taken. */
  info(message: string, properties?: Record<string, unknown>): void;
  /** Something went wrong and was handled: a peer unreachable, a damaged file skipped. */
  warn(message: string, properties?: Record<string, unknown>): void;
  /** Something went wrong that needs an operator: storage failing, the node stopping. */
  error(message: string, properties?: Record<string, unknown>): void;
}
