/**
 * The replicated key-value state machine of raftd.
 *
 * Each key keeps its value, the index of the put that created it and the
 * index of its last put. Compare-and-set compares the modify index (0 = the
 * key must not exist). Besides keys it holds the HTTP address of each server
 * (the Raft configuration only knows transport addresses), so any node can
 * forward to the leader's API.
 *
 * @module
 */

import type { FSM, FSMEntry, FSMSnapshot } from "../fsm.ts";
import { decodeCommand, KvOp } from "./kv_command.ts";
import { type KvItem, readKvSnapshot, writeKvSnapshot } from "./kv_snapshot.ts";

export type { KvItem } from "./kv_snapshot.ts";

/**
 * What applying a command returned: `ok`, or `conflict` when the cas index
 * did not match (`current` is the key's modify index then, 0 when absent).
 *
 * @example
 * ```ts
 * import type { KvResult } from "./kv_fsm.ts";
 * const conflict: KvResult = { ok: false, current: 7 };
 * ```
 */
export type KvResult = { ok: true } | { ok: false; current: number };

const OK: KvResult = Object.freeze({ ok: true }) as KvResult;

/**
 * A key-value map replicated through Raft.
 *
 * @example Applying commands directly (as Raft would)
 * ```ts
 * import { KvFsm } from "./kv_fsm.ts";
 * import { encodePut } from "./kv_command.ts";
 * const fsm = new KvFsm();
 * fsm.apply({ index: 1, term: 1, data: encodePut("a", new TextEncoder().encode("x")) });
 * console.log(fsm.get("a")?.modifyIndex); // 1
 * console.log(fsm.apply({ index: 2, term: 1, data: encodePut("a", new Uint8Array(), 0) })); // { ok: false, current: 1 }
 * ```
 */
export class KvFsm implements FSM<KvResult> {
  #items = new Map<string, KvItem>();
  #members = new Map<string, string>();
  #lastIndex = 0;
  #onMembersChange: (() => void) | undefined;

  /**
   * @param options.onMembersChange called after a member address was set or removed
   *   (also after a restore), e.g. to invalidate caches.
   */
  constructor(options: { onMembersChange?: () => void } = {}) {
    this.#onMembersChange = options.onMembersChange;
  }

  /** Apply one committed command. Entries that fail to decode are skipped (counted as ok). */
  apply(entry: FSMEntry): KvResult {
    this.#lastIndex = entry.index;
    let cmd;
    try {
      cmd = decodeCommand(entry.data);
    } catch {
      // A foreign or corrupt command must not stop the state machine; every
      // node skips it the same way, so state stays identical.
      return OK;
    }
    switch (cmd.op) {
      case KvOp.Put: {
        const cur = this.#items.get(cmd.key);
        if (cmd.cas !== undefined && (cur?.modifyIndex ?? 0) !== cmd.cas) {
          return { ok: false, current: cur?.modifyIndex ?? 0 };
        }
        // A value decoded out of a much larger buffer would pin that buffer
        // (e.g. a whole network frame); copy it out then.
        const v = cmd.value;
        const value = v.buffer.byteLength > v.length * 2 + 256 ? v.slice() : v;
        this.#items.set(cmd.key, {
          value,
          createIndex: cur?.createIndex ?? entry.index,
          modifyIndex: entry.index,
        });
        return OK;
      }
      case KvOp.Delete: {
        const cur = this.#items.get(cmd.key);
        if (cmd.cas !== undefined && (cur?.modifyIndex ?? 0) !== cmd.cas) {
          return { ok: false, current: cur?.modifyIndex ?? 0 };
        }
        this.#items.delete(cmd.key);
        return OK;
      }
      case KvOp.SetMember:
        if (this.#members.get(cmd.id) !== cmd.http) {
          this.#members.set(cmd.id, cmd.http);
          this.#onMembersChange?.();
        }
        return OK;
      case KvOp.RemoveMember:
        if (this.#members.delete(cmd.id)) this.#onMembersChange?.();
        return OK;
    }
  }

  /** A point-in-time copy (a shallow clone: stored items are immutable), streamed on persist. */
  snapshot(): FSMSnapshot {
    let items: Map<string, KvItem> | undefined = new Map(this.#items);
    let members: Map<string, string> | undefined = new Map(this.#members);
    return {
      async persist(sink) {
        if (!items || !members) throw new Error("KV snapshot was already released");
        await writeKvSnapshot(items, members, sink);
      },
      release() {
        items = undefined;
        members = undefined;
      },
    };
  }

  /** Replace the whole state with a snapshot, parsed as it streams in. */
  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    const state = await readKvSnapshot(data);
    this.#items = state.items;
    this.#members = state.members;
    this.#onMembersChange?.();
  }

  /** The stored item for `key`, if any. */
  get(key: string): KvItem | undefined {
    return this.#items.get(key);
  }

  /** Keys starting with `prefix`, sorted; at most `limit`. */
  keys(prefix = "", limit = Infinity): string[] {
    const out: string[] = [];
    for (const k of this.#items.keys()) if (k.startsWith(prefix)) out.push(k);
    out.sort();
    return out.length > limit ? out.slice(0, limit) : out;
  }

  /** Number of keys. */
  get size(): number {
    return this.#items.size;
  }

  /** Index of the last entry applied (0 after a restore until the next apply). */
  get lastIndex(): number {
    return this.#lastIndex;
  }

  /** The HTTP address recorded for server `id`. */
  memberHttp(id: string): string | undefined {
    return this.#members.get(id);
  }

  /**
   * Replace the whole member table (operator recovery: the addresses of the
   * servers of the new configuration). Not replicated: use it only on a
   * stopped node's state, before it is written out.
   */
  replaceMembers(members: ReadonlyMap<string, string>): void {
    this.#members = new Map(members);
    this.#onMembersChange?.();
  }

  /** All recorded server id → HTTP address pairs. */
  members(): ReadonlyMap<string, string> {
    return this.#members;
  }
}
