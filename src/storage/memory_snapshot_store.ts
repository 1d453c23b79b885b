/**
 * A {@linkcode SnapshotStore} in memory, for tests and the simulation.
 *
 * @module
 */

import type { SnapshotMeta } from "../core/types.ts";
import { InvalidStateError, StorageError } from "../errors.ts";
import { type Clock, RealClock } from "../platform/clock.ts";
import { compareSnapshots } from "./snapshot_order.ts";
import type { SnapshotInfo, SnapshotSink, SnapshotSource, SnapshotStore } from "./types.ts";
import { describeValue } from "../describe_value.ts";

/**
 * Options of {@linkcode MemorySnapshotStore}.
 *
 * @example
 * ```ts
 * import type { MemorySnapshotStoreOptions } from "./memory_snapshot_store.ts";
 * const opts: MemorySnapshotStoreOptions = { retain: 3 };
 * ```
 */
export interface MemorySnapshotStoreOptions {
  /** How many snapshots to keep (default 2, at least 1). */
  retain?: number;
  /** Where the millisecond stamp of snapshot ids comes from (default the system clock). */
  clock?: Pick<Clock, "wallClock">;
}

interface Stored {
  info: SnapshotInfo;
  seq: number;
  chunks: Uint8Array[];
}

function copyInfo(i: SnapshotInfo): SnapshotInfo {
  return {
    id: i.id,
    index: i.index,
    term: i.term,
    size: i.size,
    configurationIndex: i.configurationIndex,
    configuration: { servers: i.configuration.servers.map((s) => ({ ...s })) },
  };
}

/**
 * Keeps the newest `retain` snapshots in memory as the chunks they were
 * written in (copied, so callers may reuse their buffers) and streams them
 * back chunk by chunk.
 *
 * @example
 * ```ts
 * import { MemorySnapshotStore } from "./memory_snapshot_store.ts";
 * const store = new MemorySnapshotStore();
 * const sink = await store.create({
 *   index: 10, term: 1, configuration: { servers: [] }, configurationIndex: 1,
 * });
 * await sink.write(new Uint8Array([1, 2, 3]));
 * const info = await sink.close();
 * const src = await store.open(info.id);
 * for await (const chunk of src.data) console.log(chunk.length); // 3
 * ```
 */
export class MemorySnapshotStore implements SnapshotStore {
  readonly #retain: number;
  readonly #clock: Pick<Clock, "wallClock">;
  #stored: Stored[] = [];
  #seq = 0;
  #lastMs = 0;

  /**
   * Creates an empty store keeping the newest `retain` snapshots.
   *
   * @throws {RangeError} When `retain` is not an integer of at least 1.
   *
   * @example
   * ```ts
   * import { MemorySnapshotStore } from "./memory_snapshot_store.ts";
   * const store = new MemorySnapshotStore({ retain: 1 });
   * console.log(await store.list()); // []
   * ```
   */
  constructor(options: MemorySnapshotStoreOptions = {}) {
    const retain = options.retain ?? 2;
    if (!Number.isSafeInteger(retain) || retain < 1) {
      throw new RangeError(`retain must be an integer >= 1, got ${describeValue(retain)}`);
    }
    this.#retain = retain;
    // Only wallClock() is used: a RealClock holds nothing until queueTask().
    this.#clock = options.clock ?? new RealClock();
  }

  /**
   * Start a snapshot; it becomes visible when its sink is closed.
   *
   * @example
   * ```ts
   * import { MemorySnapshotStore } from "./memory_snapshot_store.ts";
   * const store = new MemorySnapshotStore();
   * const meta = { index: 10, term: 1, configuration: { servers: [] }, configurationIndex: 1 };
   * const sink = await store.create(meta);
   * await sink.write(new Uint8Array([1]));
   * console.log((await store.list()).length); // 0
   * await sink.close();
   * console.log((await store.list()).length); // 1
   * ```
   */
  create(meta: SnapshotMeta): Promise<SnapshotSink> {
    // Ids carry a millisecond stamp like the file store's; keep them unique.
    const ms = Math.max(this.#clock.wallClock(), this.#lastMs + 1);
    this.#lastMs = ms;
    const id = `${meta.term}-${meta.index}-${ms}`;
    const chunks: Uint8Array[] = [];
    let size = 0;
    let done = false;
    const closed = (op: string) =>
      Promise.reject(new InvalidStateError(`snapshot sink ${id}: ${op} after close or cancel`));
    const sink: SnapshotSink = {
      id,
      write: (chunk: Uint8Array) => {
        if (done) return closed("write");
        chunks.push(chunk.slice());
        size += chunk.length;
        return Promise.resolve();
      },
      close: () => {
        if (done) return closed("close");
        done = true;
        const info = copyInfo({ ...meta, id, size });
        this.#stored.push({ info, seq: this.#seq++, chunks });
        this.#stored.sort((a, b) => compareSnapshots(a.info, b.info) || b.seq - a.seq);
        this.#stored.length = Math.min(this.#stored.length, this.#retain);
        return Promise.resolve(copyInfo(info));
      },
      cancel: () => {
        done = true;
        chunks.length = 0;
        return Promise.resolve();
      },
    };
    return Promise.resolve(sink);
  }

  /**
   * Delete a snapshot; unknown ids are ignored.
   *
   * @example
   * ```ts
   * import { MemorySnapshotStore } from "./memory_snapshot_store.ts";
   * const store = new MemorySnapshotStore();
   * const meta = { index: 10, term: 1, configuration: { servers: [] }, configurationIndex: 1 };
   * const info = await (await store.create(meta)).close();
   * await store.remove(info.id);
   * console.log(await store.list()); // []
   * ```
   */
  remove(id: string): Promise<void> {
    this.#stored = this.#stored.filter((s) => s.info.id !== id);
    return Promise.resolve();
  }

  /**
   * Stored snapshots, newest first.
   *
   * @example
   * ```ts
   * import { MemorySnapshotStore } from "./memory_snapshot_store.ts";
   * const store = new MemorySnapshotStore();
   * const meta = { index: 10, term: 1, configuration: { servers: [] }, configurationIndex: 1 };
   * await (await store.create(meta)).close();
   * await (await store.create({ ...meta, index: 20 })).close();
   * console.log((await store.list()).map((s) => s.index)); // [20, 10]
   * ```
   */
  list(): Promise<SnapshotInfo[]> {
    return Promise.resolve(this.#stored.map((s) => copyInfo(s.info)));
  }

  /**
   * Open a snapshot by id.
   *
   * @throws {StorageError} When no snapshot has that id.
   *
   * @example
   * ```ts
   * import { MemorySnapshotStore } from "./memory_snapshot_store.ts";
   * const store = new MemorySnapshotStore();
   * await store.open("1-1-1").catch((e: Error) => console.log(e.name)); // StorageError
   * ```
   */
  open(id: string): Promise<SnapshotSource> {
    const s = this.#stored.find((x) => x.info.id === id);
    if (s === undefined) {
      return Promise.reject(new StorageError(`no snapshot with id ${JSON.stringify(id)}`));
    }
    const chunks = s.chunks;
    async function* data(): AsyncGenerator<Uint8Array> {
      for (const c of chunks) yield c;
    }
    return Promise.resolve({ info: copyInfo(s.info), data: data() });
  }
}
