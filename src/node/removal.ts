/**
 * Noticing that this server was removed from the cluster: the configuration
 * it applied last no longer lists it, though an earlier one did. With
 * `config.shutdownOnRemove` the node then shuts down, after a grace period.
 *
 * @module
 */

import type { Configuration } from "../core/types.ts";
import type { NodeContext } from "./context.ts";

/** How many election timeouts a removed server waits before `shutdownOnRemove` stops it. */
const REMOVAL_GRACE_ELECTION_TIMEOUTS = 3;

/**
 * Watches the applied configuration for this server's removal.
 *
 * @example
 * ```ts
 * import type { RemovalWatch } from "./removal.ts";
 * function afterApplying(removal: RemovalWatch) {
 *   removal.note(); // emits { type: "removed" } once, when this server is dropped
 *   if (removal.removed) console.log("removed from the cluster");
 * }
 * ```
 */
export class RemovalWatch {
  #node: NodeContext;
  #applied: () => { index: number; configuration: Configuration };
  #shutdown: () => void;
  /** An applied configuration has listed this server (so it can be removed). */
  #wasMember: boolean;
  #removed = false;

  /**
   * Watch `node`: `applied` is the configuration applied last, `shutdown`
   * stops the node (for `shutdownOnRemove`).
   */
  constructor(
    node: NodeContext,
    applied: () => { index: number; configuration: Configuration },
    shutdown: () => void,
  ) {
    this.#node = node;
    this.#applied = applied;
    this.#shutdown = shutdown;
    this.#wasMember = this.#listed(applied().configuration);
  }

  /** Whether this server learned it was removed. */
  get removed(): boolean {
    return this.#removed;
  }

  /** After applies: notice the configuration dropping (or listing again) this server. */
  note(): void {
    const node = this.#node;
    const { index, configuration } = this.#applied();
    if (this.#listed(configuration)) {
      this.#wasMember = true;
      this.#removed = false;
      return;
    }
    if (!this.#wasMember || this.#removed || node.isShutdown()) return;
    this.#removed = true;
    const config = node.config();
    node.log.info("{id} was removed from the cluster (configuration at index {index})", {
      id: node.id,
      index,
    });
    node.emit({ type: "removed", index });
    if (config.shutdownOnRemove) {
      // Not from inside the apply loop that is telling us, and after a grace
      // period: a leader that removed itself has the commit of its removal
      // to hand on first; and a server that was added back while it was
      // down replays its own removal on restart, so the cluster that counts
      // it again gets that long to bring the newer configuration. If that
      // cluster has no leader, it may need this server's vote to elect one,
      // and a restarted server ignores votes for an election timeout
      // (check-quorum stickiness) while candidates ask at most every two:
      // so the grace is three election timeouts (one was too short: the
      // server shut down before it could vote, over and over).
      this.#shutdownLater(node.core.lastIndex);
    }
  }

  /**
   * Shut down after the grace period unless listed again by then, or unless
   * the log grew past `lastIndex` meanwhile: a leader still sends this
   * server entries, so it may be catching up through history towards an
   * entry that adds it back (a leader stops sending entries to a server it
   * removed once that server has the removal). Without this, a server added
   * back while far behind stopped at every old removal it replayed.
   */
  #shutdownLater(lastIndex: number): void {
    const node = this.#node;
    node.timers.after(REMOVAL_GRACE_ELECTION_TIMEOUTS * node.config().electionTimeout, () => {
      const listed = this.#listed(node.core.latestConfiguration().configuration);
      if (!this.#removed || listed || node.isShutdown()) return;
      const last = node.core.lastIndex;
      if (last > lastIndex) return this.#shutdownLater(last);
      node.log.info("{id} shuts down: it was removed (shutdownOnRemove)", { id: node.id });
      this.#shutdown();
    });
  }

  #listed(configuration: Configuration): boolean {
    return configuration.servers.some((s) => s.id === this.#node.id);
  }
}
