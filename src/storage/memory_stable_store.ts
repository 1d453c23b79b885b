/**
 * A {@linkcode StableStore} in memory, for tests and the simulation.
 *
 * @module
 */

import type { HardState } from "../core/types.ts";
import type { StableStore } from "./types.ts";

/**
 * Keeps the {@linkcode HardState} in a variable (copied in and out).
 *
 * @example
 * ```ts
 * import { MemoryStableStore } from "./memory_stable_store.ts";
 * const s = new MemoryStableStore();
 * await s.setState({ term: 2, vote: "n1", commit: 0 });
 * console.log((await s.getState())?.term); // 2
 * ```
 */
export class MemoryStableStore implements StableStore {
  #state: HardState | undefined;

  /**
   * The last state stored, or undefined.
   *
   * @example
   * ```ts
   * import { MemoryStableStore } from "./memory_stable_store.ts";
   * console.log(await new MemoryStableStore().getState()); // undefined
   * ```
   */
  getState(): Promise<HardState | undefined> {
    const s = this.#state;
    return Promise.resolve(s && { term: s.term, vote: s.vote, commit: s.commit });
  }

  /**
   * Store a copy of `state`.
   *
   * @example
   * ```ts
   * import { MemoryStableStore } from "./memory_stable_store.ts";
   * const store = new MemoryStableStore();
   * await store.setState({ term: 4, vote: "n2", commit: 10 });
   * console.log(await store.getState()); // { term: 4, vote: "n2", commit: 10 }
   * ```
   */
  setState(state: HardState): Promise<void> {
    this.#state = { term: state.term, vote: state.vote, commit: state.commit };
    return Promise.resolve();
  }

  /**
   * Nothing to release; resolves at once.
   *
   * @example
   * ```ts
   * import { MemoryStableStore } from "./memory_stable_store.ts";
   * await new MemoryStableStore().close();
   * ```
   */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
