/**
 * Observers of a node and what they are told: role and leader changes,
 * membership changes (found by comparing configurations), followers that
 * stopped answering a leader's heartbeats, and snapshots.
 *
 * @module
 */

import type { RaftCore } from "../core/raft_core.ts";
import type { Configuration, ServerId } from "../core/types.ts";
import type { Logger } from "../logger.ts";
import type { Observation } from "./types.ts";

interface Observer {
  callback: (o: Observation) => void;
  filter?: (o: Observation) => boolean;
}

/**
 * The registered observers, and the state needed to tell them only of changes.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { Observers } from "./observers.ts";
 * const observers = new Observers(getLogger(["raftd", "raft"]));
 * const seen: string[] = [];
 * const stop = observers.observe((o) => seen.push(o.type), (o) => o.type === "snapshot");
 * observers.emit({ type: "snapshot", index: 10, term: 2, size: 5 });
 * observers.emit({ type: "state", state: "leader", term: 2 });
 * stop();
 * console.log(seen); // ["snapshot"]
 * ```
 */
export class Observers {
  #log: Logger;
  #observers = new Set<Observer>();
  #lastConfigIndexSeen = 0;
  #lastConfigSeen: Configuration = { servers: [] };
  #failedHeartbeats = new Set<ServerId>();

  /** Observers that report a throwing callback to `log`. */
  constructor(log: Logger) {
    this.#log = log;
  }

  /** Add an observer; returns a function that removes it. */
  observe(callback: (o: Observation) => void, filter?: (o: Observation) => boolean): () => void {
    const entry = { callback, filter };
    this.#observers.add(entry);
    return () => this.#observers.delete(entry);
  }

  /** Tell every interested observer; one that throws does not stop the others. */
  emit(o: Observation): void {
    for (const { callback, filter } of this.#observers) {
      try {
        if (!filter || filter(o)) callback(o);
      } catch (e) {
        this.#log.warn("an observer threw: {error}", { error: String(e) });
      }
    }
  }

  /** Report the servers added, removed, promoted or demoted since the last configuration seen. */
  noteConfiguration(latest: { index: number; configuration: Configuration }): void {
    if (latest.index === this.#lastConfigIndexSeen) return;
    const before = new Map(this.#lastConfigSeen.servers.map((s) => [s.id, s]));
    const after = new Map(latest.configuration.servers.map((s) => [s.id, s]));
    this.#lastConfigIndexSeen = latest.index;
    this.#lastConfigSeen = latest.configuration;
    for (const [id, s] of after) {
      const old = before.get(id);
      if (!old) this.emit({ type: "peer", id, address: s.address, change: "added" });
      else if (old.suffrage !== "voter" && s.suffrage === "voter") {
        this.emit({ type: "peer", id, address: s.address, change: "promoted" });
      } else if (old.suffrage === "voter" && s.suffrage !== "voter") {
        this.emit({ type: "peer", id, address: s.address, change: "demoted" });
      }
    }
    for (const [id, s] of before) {
      if (!after.has(id)) this.emit({ type: "peer", id, address: s.address, change: "removed" });
    }
  }

  /**
   * On a leader's tick: report each follower not heard from within an
   * election timeout once, until it answers again. `leaderSinceTick` is
   * when this node became leader (nobody fails before a full window).
   */
  checkHeartbeats(
    core: RaftCore,
    window: number,
    leaderSinceTick: number,
    lastContactOf: (ticksAgo: number) => number,
  ): void {
    if (core.state !== "leader") return;
    const limit = core.ticks - window;
    if (core.ticks - leaderSinceTick < window) return;
    for (const [id, pr] of core.progress()) {
      const failing = pr.lastHeardTick < limit;
      if (failing && !this.#failedHeartbeats.has(id)) {
        this.#failedHeartbeats.add(id);
        const lastContact = Number.isFinite(pr.lastHeardTick)
          ? lastContactOf(core.ticks - pr.lastHeardTick)
          : 0;
        this.emit({ type: "heartbeat_failed", id, lastContact });
      } else if (!failing) {
        this.#failedHeartbeats.delete(id);
      }
    }
  }

  /** Leadership lost: heartbeat failures start over in the next term led here. */
  clearHeartbeatFailures(): void {
    this.#failedHeartbeats.clear();
  }
}
