/**
 * The streamed snapshot format of the key-value store.
 *
 * ```
 * "RKVSNAP1"                                   8-byte magic
 * 1 u32 keyLen u32 valueLen f64 create f64 modify key value   one per key
 * 2 u32 idLen u32 httpLen id http              one per member address
 * 0 f64 records                                end marker with the record count
 * ```
 *
 * Integers are big-endian; indexes are float64 (exact up to 2^53). The writer
 * emits chunks of about 64 KiB (large values go out as their own chunk, not
 * copied); the reader parses records as chunks arrive, so neither side holds
 * the whole state as one buffer.
 *
 * @module
 */

import { CorruptionError } from "../errors.ts";

/**
 * One stored key. Objects are immutable once in the map (replaced, never mutated).
 *
 * @example
 * ```ts
 * import type { KvItem } from "./kv_snapshot.ts";
 * const item: KvItem = { value: new Uint8Array([1]), createIndex: 3, modifyIndex: 9 };
 * ```
 */
export interface KvItem {
  /** The value bytes. */
  readonly value: Uint8Array;
  /** Log index of the put that created the key. */
  readonly createIndex: number;
  /** Log index of the last put of the key. */
  readonly modifyIndex: number;
}

const MAGIC = new TextEncoder().encode("RKVSNAP1");
const TAG_END = 0;
const TAG_KV = 1;
const TAG_MEMBER = 2;
const KV_HEADER = 25;
const MEMBER_HEADER = 9;
const END_SIZE = 9;
/**
 * Default size of the chunks handed to the sink.
 *
 * @example
 * ```ts
 * import { SNAPSHOT_CHUNK_SIZE } from "./kv_snapshot.ts";
 * console.log(SNAPSHOT_CHUNK_SIZE); // 65536
 * ```
 */
export const SNAPSHOT_CHUNK_SIZE = 64 * 1024;

/**
 * Write `items` and `members` to `sink` in the snapshot format.
 *
 * @example
 * ```ts
 * import { readKvSnapshot, writeKvSnapshot } from "./kv_snapshot.ts";
 * const chunks: Uint8Array[] = [];
 * const items = new Map([["a", { value: new Uint8Array([1]), createIndex: 1, modifyIndex: 1 }]]);
 * await writeKvSnapshot(items, new Map(), { write: async (c) => { chunks.push(c); } });
 * const state = await readKvSnapshot((async function* () { yield* chunks; })());
 * console.log(state.items.size); // 1
 * ```
 */
export async function writeKvSnapshot(
  items: Iterable<[string, KvItem]>,
  members: Iterable<[string, string]>,
  sink: { write(chunk: Uint8Array): Promise<void> },
  chunkSize: number = SNAPSHOT_CHUNK_SIZE,
): Promise<void> {
  const encoder = new TextEncoder();
  let buf = new Uint8Array(chunkSize);
  let view = new DataView(buf.buffer);
  let pos = 0;
  let records = 0;
  // The sink may keep the chunks it is given (a memory store does): each flush
  // hands over the buffer and starts a fresh one.
  const flush = async () => {
    if (pos === 0) return;
    const out = buf.subarray(0, pos);
    buf = new Uint8Array(chunkSize);
    view = new DataView(buf.buffer);
    pos = 0;
    await sink.write(out);
  };
  const ensure = async (n: number) => {
    if (pos + n <= buf.length) return;
    await flush();
    if (n > buf.length) {
      buf = new Uint8Array(n);
      view = new DataView(buf.buffer);
    }
  };
  // The first chunk always has room for the magic.
  buf.set(MAGIC, 0);
  pos = MAGIC.length;

  for (const [key, item] of items) {
    const big = item.value.length > chunkSize >> 2;
    await ensure(KV_HEADER + key.length * 3 + (big ? 0 : item.value.length));
    const keyLen = encoder.encodeInto(key, buf.subarray(pos + KV_HEADER)).written;
    view.setUint8(pos, TAG_KV);
    view.setUint32(pos + 1, keyLen);
    view.setUint32(pos + 5, item.value.length);
    view.setFloat64(pos + 9, item.createIndex);
    view.setFloat64(pos + 17, item.modifyIndex);
    pos += KV_HEADER + keyLen;
    if (big) {
      // Values are never mutated once stored, so the sink may keep this view.
      await flush();
      await sink.write(item.value);
    } else {
      buf.set(item.value, pos);
      pos += item.value.length;
    }
    records++;
  }
  for (const [id, http] of members) {
    await ensure(MEMBER_HEADER + (id.length + http.length) * 3);
    const idLen = encoder.encodeInto(id, buf.subarray(pos + MEMBER_HEADER)).written;
    const httpLen = encoder.encodeInto(http, buf.subarray(pos + MEMBER_HEADER + idLen)).written;
    view.setUint8(pos, TAG_MEMBER);
    view.setUint32(pos + 1, idLen);
    view.setUint32(pos + 5, httpLen);
    pos += MEMBER_HEADER + idLen + httpLen;
    records++;
  }
  await ensure(END_SIZE);
  view.setUint8(pos, TAG_END);
  view.setFloat64(pos + 1, records);
  pos += END_SIZE;
  await flush();
}

/**
 * A queue of byte chunks read across chunk boundaries. Bytes handed out are
 * copies, so the queue never pins the stream's buffers.
 */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  #head = 0; // read offset into #chunks[0]
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The byte at `offset` from the read position (offset < length). */
  peekByte(offset: number): number {
    let i = 0;
    let o = offset + this.#head;
    while (o >= this.#chunks[i].length) {
      o -= this.#chunks[i].length;
      i++;
    }
    return this.#chunks[i][o];
  }

  peekU32(offset: number): number {
    return ((this.peekByte(offset) << 24) | (this.peekByte(offset + 1) << 16) |
      (this.peekByte(offset + 2) << 8) | this.peekByte(offset + 3)) >>> 0;
  }

  /** Copy out the next `n` bytes (n <= length). */
  take(n: number): Uint8Array {
    const first = this.#chunks[0];
    if (first !== undefined && first.length - this.#head >= n) {
      const out = first.slice(this.#head, this.#head + n);
      this.#advance(n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0];
      const m = Math.min(n - filled, chunk.length - this.#head);
      out.set(chunk.subarray(this.#head, this.#head + m), filled);
      filled += m;
      this.#advance(m);
    }
    return out;
  }

  #advance(n: number): void {
    this.length -= n;
    this.#head += n;
    while (this.#chunks.length > 0 && this.#head >= this.#chunks[0].length) {
      this.#head -= this.#chunks[0].length;
      this.#chunks.shift();
    }
  }
}

/**
 * What {@linkcode readKvSnapshot} returns.
 *
 * @example
 * ```ts
 * import type { KvSnapshotState } from "./kv_snapshot.ts";
 * const empty: KvSnapshotState = { items: new Map(), members: new Map() };
 * ```
 */
export interface KvSnapshotState {
  /** Every key with its value and indexes. */
  items: Map<string, KvItem>;
  /** Server id → HTTP address. */
  members: Map<string, string>;
}

function corrupt(what: string): never {
  throw new CorruptionError(`KV snapshot is malformed: ${what}`);
}

/**
 * Read the rest of a stream whose content did not parse. The snapshot store
 * checks size and checksum as the stream ends and reports damage with the
 * file's name: that error says more than ours, so it wins. Ours (as a
 * {@linkcode CorruptionError}, so the node falls back to an older snapshot)
 * is thrown when the bytes verify yet do not parse.
 */
async function drainThenThrow(it: AsyncIterator<Uint8Array>, cause: unknown): Promise<never> {
  try {
    for (;;) if ((await it.next()).done) break;
  } catch (e) {
    if (e instanceof CorruptionError) throw e;
  }
  if (cause instanceof CorruptionError) throw cause;
  throw new CorruptionError(
    `KV snapshot is malformed: ${cause instanceof Error ? cause.message : String(cause)}`,
  );
}

/**
 * Parse a snapshot stream incrementally. Throws a `CorruptionError` when the
 * stream is not in this format, truncated, or has bytes after the end marker
 * (or the source's own error, e.g. a failed checksum naming the file, when
 * reading the source fails).
 *
 * @example
 * ```ts
 * import { readKvSnapshot } from "./kv_snapshot.ts";
 * try {
 *   await readKvSnapshot((async function* () { yield new Uint8Array([1, 2, 3]); })());
 * } catch (e) {
 *   console.log((e as Error).message);
 * }
 * ```
 */
export async function readKvSnapshot(data: AsyncIterable<Uint8Array>): Promise<KvSnapshotState> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const items = new Map<string, KvItem>();
  const members = new Map<string, string>();
  const q = new ByteQueue();
  let sawMagic = false;
  let ended = false;
  let records = 0;

  const it = data[Symbol.asyncIterator]();
  for (;;) {
    // Errors of the source itself (I/O, a failed checksum) pass through as they are.
    const next = await it.next();
    if (next.done) break;
    const chunk = next.value;
    try {
      consume(chunk);
    } catch (e) {
      return await drainThenThrow(it, e);
    }
  }
  if (!ended) corrupt(sawMagic ? "truncated (no end marker)" : "truncated (no magic)");
  return { items, members };

  function consume(chunk: Uint8Array): void {
    if (ended) {
      if (chunk.length > 0) corrupt("data after the end marker");
      return;
    }
    q.push(chunk);
    if (!sawMagic) {
      if (q.length < MAGIC.length) return;
      const magic = q.take(MAGIC.length);
      if (!magic.every((b, i) => b === MAGIC[i])) corrupt("bad magic (not a raftd KV snapshot)");
      sawMagic = true;
    }
    while (q.length > 0) {
      const tag = q.peekByte(0);
      if (tag === TAG_KV) {
        if (q.length < KV_HEADER) break;
        const keyLen = q.peekU32(1);
        const valueLen = q.peekU32(5);
        if (q.length < KV_HEADER + keyLen + valueLen) break;
        const head = view(q.take(KV_HEADER));
        const key = decoder.decode(q.take(keyLen));
        const value = q.take(valueLen);
        items.set(key, {
          value,
          createIndex: head.getFloat64(9),
          modifyIndex: head.getFloat64(17),
        });
      } else if (tag === TAG_MEMBER) {
        if (q.length < MEMBER_HEADER) break;
        const idLen = q.peekU32(1);
        const httpLen = q.peekU32(5);
        if (q.length < MEMBER_HEADER + idLen + httpLen) break;
        q.take(MEMBER_HEADER);
        const id = decoder.decode(q.take(idLen));
        members.set(id, decoder.decode(q.take(httpLen)));
      } else if (tag === TAG_END) {
        if (q.length < END_SIZE) break;
        const count = view(q.take(END_SIZE)).getFloat64(1);
        if (count !== records) corrupt(`end marker counts ${count} records, read ${records}`);
        if (q.length > 0) corrupt("data after the end marker");
        ended = true;
        break;
      } else {
        corrupt(`unknown record tag ${tag}`);
      }
      records++;
    }
  }
}
