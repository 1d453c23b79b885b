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
 * Writes the snapshot format record by record to a sink, in chunks of about
 * `chunkSize` bytes: {@linkcode KvSnapshotEncoder.put} every key, then
 * {@linkcode KvSnapshotEncoder.member} every member address, then
 * {@linkcode KvSnapshotEncoder.finish}.
 *
 * @example
 * ```ts
 * import { KvSnapshotEncoder, readKvSnapshot } from "./kv_snapshot.ts";
 * const chunks: Uint8Array[] = [];
 * const encoder = new KvSnapshotEncoder({ write: async (c) => { chunks.push(c); } });
 * await encoder.put("a", { value: new Uint8Array([1]), createIndex: 1, modifyIndex: 1 });
 * await encoder.member("n1", "http://127.0.0.1:8001");
 * await encoder.finish();
 * const state = await readKvSnapshot((async function* () { yield* chunks; })());
 * console.log(state.items.size, state.members.size); // 1 1
 * ```
 */
export class KvSnapshotEncoder {
  readonly #sink: { write(chunk: Uint8Array): Promise<void> };
  readonly #chunkSize: number;
  readonly #encoder = new TextEncoder();
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  #records = 0;
  #finished = false;

  /** Creates an encoder writing to `sink`. */
  constructor(
    sink: { write(chunk: Uint8Array): Promise<void> },
    chunkSize: number = SNAPSHOT_CHUNK_SIZE,
  ) {
    this.#sink = sink;
    this.#chunkSize = chunkSize;
    this.#buf = new Uint8Array(chunkSize);
    this.#view = new DataView(this.#buf.buffer);
    // The first chunk always has room for the magic.
    this.#buf.set(MAGIC, 0);
    this.#pos = MAGIC.length;
  }

  /** Append one key. */
  async put(key: string, item: KvItem): Promise<void> {
    this.#checkOpen();
    const big = item.value.length > this.#chunkSize >> 2;
    await this.#ensure(KV_HEADER + key.length * 3 + (big ? 0 : item.value.length));
    const pos = this.#pos;
    const keyLen = this.#encoder.encodeInto(key, this.#buf.subarray(pos + KV_HEADER)).written;
    this.#view.setUint8(pos, TAG_KV);
    this.#view.setUint32(pos + 1, keyLen);
    this.#view.setUint32(pos + 5, item.value.length);
    this.#view.setFloat64(pos + 9, item.createIndex);
    this.#view.setFloat64(pos + 17, item.modifyIndex);
    this.#pos += KV_HEADER + keyLen;
    if (big) {
      // Values are never mutated once stored, so the sink may keep this view.
      await this.#flush();
      await this.#sink.write(item.value);
    } else {
      this.#buf.set(item.value, this.#pos);
      this.#pos += item.value.length;
    }
    this.#records++;
  }

  /** Append one member address (after every key). */
  async member(id: string, http: string): Promise<void> {
    this.#checkOpen();
    await this.#ensure(MEMBER_HEADER + (id.length + http.length) * 3);
    const pos = this.#pos;
    const buf = this.#buf;
    const idLen = this.#encoder.encodeInto(id, buf.subarray(pos + MEMBER_HEADER)).written;
    const httpLen =
      this.#encoder.encodeInto(http, buf.subarray(pos + MEMBER_HEADER + idLen)).written;
    this.#view.setUint8(pos, TAG_MEMBER);
    this.#view.setUint32(pos + 1, idLen);
    this.#view.setUint32(pos + 5, httpLen);
    this.#pos += MEMBER_HEADER + idLen + httpLen;
    this.#records++;
  }

  /** Write the end marker and flush. */
  async finish(): Promise<void> {
    this.#checkOpen();
    await this.#ensure(END_SIZE);
    this.#view.setUint8(this.#pos, TAG_END);
    this.#view.setFloat64(this.#pos + 1, this.#records);
    this.#pos += END_SIZE;
    this.#finished = true;
    await this.#flush();
  }

  #checkOpen(): void {
    if (this.#finished) throw new Error("KV snapshot encoder: already finished");
  }

  // The sink may keep the chunks it is given (a memory store does): each
  // flush hands over the buffer and starts a fresh one.
  async #flush(): Promise<void> {
    if (this.#pos === 0) return;
    const out = this.#buf.subarray(0, this.#pos);
    this.#buf = new Uint8Array(this.#chunkSize);
    this.#view = new DataView(this.#buf.buffer);
    this.#pos = 0;
    await this.#sink.write(out);
  }

  async #ensure(n: number): Promise<void> {
    if (this.#pos + n <= this.#buf.length) return;
    await this.#flush();
    if (n > this.#buf.length) {
      this.#buf = new Uint8Array(n);
      this.#view = new DataView(this.#buf.buffer);
    }
  }
}

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
  const encoder = new KvSnapshotEncoder(sink, chunkSize);
  for (const [key, item] of items) await encoder.put(key, item);
  for (const [id, http] of members) await encoder.member(id, http);
  await encoder.finish();
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
 * One record of a snapshot stream: a key, or a member's HTTP address.
 *
 * @example
 * ```ts
 * import type { KvRecord } from "./kv_snapshot.ts";
 * const r: KvRecord = { type: "member", id: "n1", http: "http://127.0.0.1:8001" };
 * ```
 */
export type KvRecord =
  | { type: "kv"; key: string; item: KvItem }
  | { type: "member"; id: string; http: string };

/**
 * Parse a snapshot stream record by record, as chunks arrive: memory stays
 * bounded by the largest record. Throws a `CorruptionError` when the stream
 * is not in this format, truncated, or has bytes after the end marker (or
 * the source's own error, e.g. a failed checksum naming the file, when
 * reading the source fails); records yielded before that must not be trusted.
 *
 * @example
 * ```ts
 * import { readKvSnapshotRecords, writeKvSnapshot } from "./kv_snapshot.ts";
 * const chunks: Uint8Array[] = [];
 * await writeKvSnapshot(new Map(), new Map([["n1", "http://h:1"]]), {
 *   write: async (c) => { chunks.push(c); },
 * });
 * for await (const r of readKvSnapshotRecords((async function* () { yield* chunks; })())) {
 *   console.log(r.type); // "member"
 * }
 * ```
 */
export async function* readKvSnapshotRecords(
  data: AsyncIterable<Uint8Array>,
): AsyncGenerator<KvRecord> {
  const parser = new KvSnapshotParser();
  const it = data[Symbol.asyncIterator]();
  for (;;) {
    // Errors of the source itself (I/O, a failed checksum) pass through as they are.
    const next = await it.next();
    if (next.done) break;
    let records: KvRecord[];
    try {
      records = parser.push(next.value);
    } catch (e) {
      return await drainThenThrow(it, e);
    }
    yield* records;
  }
  parser.finish();
}

/**
 * Pass a snapshot stream through unchanged while checking that it is in this
 * format: the result yields the same chunks and throws a `CorruptionError`
 * (before yielding the offending chunk) at the first byte that cannot belong
 * to a snapshot, or instead of ending when the stream is truncated. It holds
 * no more than the record being read.
 *
 * @example
 * ```ts
 * import { checkedKvSnapshot } from "./kv_snapshot.ts";
 * const garbage = (async function* () { yield new TextEncoder().encode("NOT A SNAPSHOT"); })();
 * try {
 *   for await (const chunk of checkedKvSnapshot(garbage)) console.log(chunk.length);
 * } catch (e) {
 *   console.log((e as Error).message); // KV snapshot is malformed: bad magic ...
 * }
 * ```
 */
export async function* checkedKvSnapshot(
  data: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const parser = new KvSnapshotParser();
  for await (const chunk of data) {
    parser.push(chunk);
    yield chunk;
  }
  parser.finish();
}

/**
 * The format's incremental parser: `push` each chunk as it arrives (it
 * returns the records it completed), then `finish`. Throws a
 * `CorruptionError` as soon as the bytes cannot be a snapshot.
 */
class KvSnapshotParser {
  #decoder = new TextDecoder("utf-8", { fatal: true });
  #q = new ByteQueue();
  #sawMagic = false;
  #ended = false;
  #records = 0;

  push(chunk: Uint8Array): KvRecord[] {
    const out: KvRecord[] = [];
    if (this.#ended) {
      if (chunk.length > 0) corrupt("data after the end marker");
      return out;
    }
    const q = this.#q;
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    q.push(chunk);
    if (!this.#sawMagic) {
      if (q.length < MAGIC.length) return out;
      const magic = q.take(MAGIC.length);
      if (!magic.every((b, i) => b === MAGIC[i])) corrupt("bad magic (not a raftd KV snapshot)");
      this.#sawMagic = true;
    }
    while (q.length > 0) {
      const tag = q.peekByte(0);
      if (tag === TAG_KV) {
        if (q.length < KV_HEADER) break;
        const keyLen = q.peekU32(1);
        const valueLen = q.peekU32(5);
        if (q.length < KV_HEADER + keyLen + valueLen) break;
        const head = view(q.take(KV_HEADER));
        const key = this.#decoder.decode(q.take(keyLen));
        const value = q.take(valueLen);
        out.push({
          type: "kv",
          key,
          item: { value, createIndex: head.getFloat64(9), modifyIndex: head.getFloat64(17) },
        });
      } else if (tag === TAG_MEMBER) {
        if (q.length < MEMBER_HEADER) break;
        const idLen = q.peekU32(1);
        const httpLen = q.peekU32(5);
        if (q.length < MEMBER_HEADER + idLen + httpLen) break;
        q.take(MEMBER_HEADER);
        const id = this.#decoder.decode(q.take(idLen));
        out.push({ type: "member", id, http: this.#decoder.decode(q.take(httpLen)) });
      } else if (tag === TAG_END) {
        if (q.length < END_SIZE) break;
        const count = view(q.take(END_SIZE)).getFloat64(1);
        if (count !== this.#records) {
          corrupt(`end marker counts ${count} records, read ${this.#records}`);
        }
        if (q.length > 0) corrupt("data after the end marker");
        this.#ended = true;
        break;
      } else {
        corrupt(`unknown record tag ${tag}`);
      }
      this.#records++;
    }
    return out;
  }

  finish(): void {
    if (!this.#ended) {
      corrupt(this.#sawMagic ? "truncated (no end marker)" : "truncated (no magic)");
    }
  }
}

/**
 * Parse a whole snapshot stream into maps (see
 * {@linkcode readKvSnapshotRecords} for the errors).
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
  const items = new Map<string, KvItem>();
  const members = new Map<string, string>();
  for await (const r of readKvSnapshotRecords(data)) {
    if (r.type === "kv") items.set(r.key, r.item);
    else members.set(r.id, r.http);
  }
  return { items, members };
}
