/**
 * The log loader: reads the entries the core asks for (`Ready.loads`) from
 * the log store — entries older than the core's cache, for a follower that
 * lags or for the FSM — in batches bounded by bytes, with a deadline, and
 * steps them back into the core. The core checks them against its log as it
 * is by then and drops what went stale.
 *
 * @module
 */

import type { LogLoad } from "../core/raft_core.ts";
import type { Entry } from "../core/types.ts";
import { CorruptionError } from "../errors.ts";
import { getLogsWithin } from "../storage/read_budget.ts";
import type { LogStore } from "../storage/types.ts";
import type { NodeContext } from "./context.ts";

/**
 * Serves the core's reads of older log entries; see the module docs.
 *
 * @example
 * ```ts
 * import type { LogLoader } from "./log_loader.ts";
 * import type { Ready } from "../core/raft_core.ts";
 * function serve(loader: LogLoader, rd: Ready) {
 *   for (const load of rd.loads) loader.load(load); // answers arrive as core.loaded(...)
 * }
 * ```
 */
export class LogLoader {
  #node: NodeContext;
  #store: LogStore;
  #reads = 0;
  #entriesRead = 0;

  /** A loader for `node` reading `store`. */
  constructor(node: NodeContext, store: LogStore) {
    this.#node = node;
    this.#store = store;
  }

  /** Reads started so far. */
  get reads(): number {
    return this.#reads;
  }

  /** Entries read so far. */
  get entriesRead(): number {
    return this.#entriesRead;
  }

  /** Read `load` and hand the entries to the core (none when the read fails or times out). */
  load(load: LogLoad): void {
    this.#reads++;
    void this.#read(load).then((entries) => {
      const node = this.#node;
      if (node.isShutdown() || node.failure()) return;
      this.#entriesRead += entries.length;
      node.core.loaded(load.id, entries);
      node.scheduleReady();
    });
  }

  async #read(load: LogLoad): Promise<Entry[]> {
    const node = this.#node;
    const timeout = node.config().storageTimeout;
    let cancel = () => {};
    const expired = new Promise<"timeout">((resolve) => {
      cancel = node.timers.after(timeout, () => resolve("timeout"));
    });
    try {
      const read = getLogsWithin(this.#store, load.lo, load.hi, load.maxBytes);
      // A late answer is simply dropped; the core asks again.
      read.catch(() => {});
      const result = await Promise.race([read, expired]);
      if (result === "timeout") {
        node.log.warn(
          "reading log entries {lo}..{hi} took more than {ms} ms; giving up on it",
          { lo: load.lo, hi: load.hi, ms: timeout },
        );
        return [];
      }
      return result;
    } catch (e) {
      if (e instanceof CorruptionError) {
        // Damaged entries must never be sent or applied: stop, like a failed write.
        node.fail(e, `reading log entries ${load.lo}..${load.hi}`);
        return [];
      }
      node.log.warn("reading log entries {lo}..{hi} failed: {error}", {
        lo: load.lo,
        hi: load.hi,
        error: String(e),
      });
      return [];
    } finally {
      cancel();
    }
  }
}
