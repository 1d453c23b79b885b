/**
 * The durable Raft log: a directory of append-only segment files.
 *
 * - Every `storeLogs` batch becomes one buffer, one write and one
 *   `fdatasync`; batches that queue up behind a write in flight are merged
 *   into the next write (group commit).
 * - An in-memory offset index (one `Uint32Array` per segment) makes a read
 *   one positioned read; a ring of the newest entries serves the hot path
 *   (a leader re-reading what it just wrote, followers catching up) from memory.
 * - On open every record is checked against its CRC-32C. A torn final write
 *   is cut off with a warning; damage to data that was already durable
 *   throws {@linkcode CorruptionError} naming the file and offset.
 *
 * See `log_format.ts` for the bytes on disk.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Logger } from "../logger.ts";
import type { Entry } from "../core/types.ts";
import { CorruptionError, StorageError } from "../errors.ts";
import { defaultFileSystem, type FileHandle, type FileSystem } from "../platform/fs.ts";
import { writeFileAtomic } from "./atomic_file.ts";
import { crc32c } from "./crc32c.ts";
import {
  checkRecord,
  decodeRecord,
  decodeSegmentHeader,
  encodeRecords,
  encodeSegmentHeader,
  parseSegmentFileName,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from "./log_format.ts";
import type { LogStore } from "./types.ts";
import { describeValue } from "../describe_value.ts";

const MIB = 1024 * 1024;
const DEFAULT_SEGMENT_BYTES = 64 * MIB;
/** Off: a Raft node caches recent entries itself (`Config.logCacheBytes`); a cache here would hold them twice. */
const DEFAULT_CACHE_ENTRIES = 0;
/** Batches waiting behind a write are merged up to this many bytes. */
const MAX_GROUP_BYTES = 16 * MIB;
/**
 * Writes up to this size reuse one buffer (grown as needed): a new buffer per
 * write would be garbage the size of every write, freed only when V8 next
 * collects it. Larger writes get a buffer of their own.
 */
const REUSED_WRITE_BUFFER_BYTES = 4 * MIB;
/** Segments are addressed with u32 offsets. */
const MAX_SEGMENT_FILE_BYTES = 0xffff_ffff;
const SCAN_CHUNK_BYTES = 4 * MIB;
/** Read handles kept open (least recently used ones are closed beyond this). */
const MAX_OPEN_READERS = 32;

const META_FILE = "meta";
const META_MAGIC = 0x52444c4d; // "RDLM"
const META_VERSION = 1;
const META_BYTES = 20;

/**
 * Options of {@linkcode FileLogStore.open}.
 *
 * @example
 * ```ts
 * import type { FileLogStoreOptions } from "./file_log_store.ts";
 * const opts: FileLogStoreOptions = { segmentBytes: 16 * 1024 * 1024, cacheEntries: 8192 };
 * ```
 */
export interface FileLogStoreOptions {
  /**
   * A new segment is started when the next write would take the current one
   * past this size (default 64 MiB). A single write is never split, so a
   * segment can exceed it by one batch.
   */
  segmentBytes?: number;
  /**
   * How many of the newest entries to keep in memory for reads (default 0:
   * none). A Raft node already keeps recent entries itself
   * (`Config.logCacheBytes`) and reads this store only for older ones, so a
   * cache here would mostly hold the same entries a second time.
   */
  cacheEntries?: number;
  /** Where warnings go (default the LogTape category `["raftd", "storage"]`). */
  logger?: Logger;
  /** File system to use (default the runtime's); tests wrap it to inject faults. */
  fs?: FileSystem;
}

/**
 * Counters of a {@linkcode FileLogStore}, e.g. for metrics.
 */
export interface FileLogStoreStats {
  /** Segment files in use. */
  segments: number;
  /** `fdatasync`/`fsync` calls made by appends, rolls and truncations. */
  syncs: number;
  /** Writes of record data (one per merged group of batches). */
  writes: number;
  /** Entries appended since open. */
  entriesWritten: number;
  /** Record bytes appended since open. */
  bytesWritten: number;
  /** Entries served from the in-memory cache. */
  cacheHits: number;
  /** Positioned reads from segment files. */
  diskReads: number;
}

interface Segment {
  /** Index of the segment's first record (from its name and header). */
  base: number;
  path: string;
  /** Records held (valid ones; after a suffix truncation, fewer than on disk until cut). */
  count: number;
  /** offsets[k] = file offset of record `base + k`; capacity may exceed `count`. */
  offsets: Uint32Array;
  /** End of the last valid record. */
  size: number;
  /** Read handle, opened on demand; at most MAX_OPEN_READERS segments keep one. */
  reader: Promise<FileHandle> | undefined;
  /** Reads in progress on `reader` (it is not closed under them). */
  inflight: number;
}

interface AppendOp {
  kind: "append";
  entries: Entry[];
  bytes: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface DeleteOp {
  kind: "delete";
  min: number;
  max: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

type Op = AppendOp | DeleteOp;

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A {@linkcode LogStore} on segment files; see the module docs.
 *
 * Entries handed to `storeLogs` are kept by reference in the cache and
 * returned by later reads: do not mutate them (or their data) afterwards.
 * Entries read from disk share one buffer per read.
 *
 * @example Append, read back, truncate
 * ```ts
 * import { FileLogStore } from "./file_log_store.ts";
 * import { EntryType } from "../core/types.ts";
 * const dir = await Deno.makeTempDir();
 * const log = await FileLogStore.open(dir);
 * const data = new TextEncoder().encode("x");
 * await log.storeLogs([1, 2, 3].map((index) => ({ index, term: 1, type: EntryType.Normal, data })));
 * console.log(await log.lastIndex()); // 3
 * await log.deleteRange(3, 3); // drop a conflicting tail
 * console.log((await log.getLogs(1, 10)).length); // 2
 * await log.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FileLogStore implements LogStore {
  readonly #dir: string;
  readonly #fs: FileSystem;
  readonly #log: Logger;
  readonly #segmentBytes: number;

  #segments: Segment[] = [];
  /** Logical first index (0 when empty). */
  #first = 0;
  /** Last index (0 when empty). */
  #last = 0;
  /** First index persisted in the meta file (0: none / derive from segments). */
  #metaFirst = 0;

  #writer: FileHandle | undefined;
  #writerSeg: Segment | undefined;

  // Ring of the newest entries: slot i % size. It covers [#cacheLo, #last].
  readonly #ring: (Entry | undefined)[];
  #cacheLo = 1;

  readonly #ops: Op[] = [];
  #writeBuffer = new Uint8Array(0);
  #running = false;
  #pumping: Promise<void> = Promise.resolve();
  #failed: StorageError | undefined;
  #closed = false;

  #readers = 0;
  /** Segments with an open reader, least recently used first. */
  readonly #openReaders = new Set<Segment>();
  #drainWaiters: (() => void)[] = [];

  readonly #stats = {
    syncs: 0,
    writes: 0,
    entriesWritten: 0,
    bytesWritten: 0,
    cacheHits: 0,
    diskReads: 0,
  };

  private constructor(dir: string, options: FileLogStoreOptions) {
    this.#dir = dir.replace(/[\\/]+$/, "") || dir;
    this.#fs = options.fs ?? defaultFileSystem();
    this.#log = options.logger ?? getLogger(["raftd", "storage"]);
    const seg = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isSafeInteger(seg) || seg < SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES) {
      throw new RangeError(
        `segmentBytes must be an integer >= ${
          SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES
        }, got ${seg}`,
      );
    }
    this.#segmentBytes = Math.min(seg, MAX_SEGMENT_FILE_BYTES);
    const cache = options.cacheEntries ?? DEFAULT_CACHE_ENTRIES;
    if (!Number.isSafeInteger(cache) || cache < 0) {
      throw new RangeError(`cacheEntries must be an integer >= 0, got ${describeValue(cache)}`);
    }
    this.#ring = new Array(cache);
  }

  /**
   * Open (or create) the log in `dir`: scan and verify every segment,
   * cut off a torn final write, and get ready to append.
   *
   * @param dir Directory of the log; created when missing.
   * @param options Segment size, cache size, logger, file system.
   * @returns The opened store.
   * @throws {CorruptionError} When data that was durable is damaged.
   * @throws {StorageError} When the files cannot be read or written.
   *
   * @example
   * ```ts
   * import { FileLogStore } from "./file_log_store.ts";
   * const dir = await Deno.makeTempDir();
   * const log = await FileLogStore.open(dir, { segmentBytes: 1024 * 1024 });
   * console.log(await log.firstIndex(), await log.lastIndex()); // 0 0
   * await log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static async open(dir: string, options: FileLogStoreOptions = {}): Promise<FileLogStore> {
    const store = new FileLogStore(dir, options);
    try {
      await store.#load();
    } catch (e) {
      await store.#closeHandles().catch(() => {});
      if (e instanceof CorruptionError || e instanceof StorageError) throw e;
      throw new StorageError(`cannot open the log in ${dir}: ${describe(e)}`, { cause: e });
    }
    return store;
  }

  /**
   * Counters since open.
   *
   * @example
   * ```ts
   * import { FileLogStore } from "./file_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const dir = await Deno.makeTempDir();
   * const log = await FileLogStore.open(dir);
   * const data = new Uint8Array([1]);
   * await log.storeLogs([{ index: 1, term: 1, type: EntryType.Normal, data }]);
   * console.log(log.stats.entriesWritten, log.stats.syncs > 0); // 1 true
   * await log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  get stats(): FileLogStoreStats {
    return { segments: this.#segments.length, ...this.#stats };
  }

  /**
   * Index of the first stored entry, 0 when empty.
   *
   * @example
   * ```ts
   * import { FileLogStore } from "./file_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const dir = await Deno.makeTempDir();
   * const log = await FileLogStore.open(dir);
   * const data = new Uint8Array([1]);
   * await log.storeLogs([5, 6].map((index) => ({ index, term: 1, type: EntryType.Normal, data })));
   * console.log(await log.firstIndex()); // 5
   * await log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  firstIndex(): Promise<number> {
    return Promise.resolve(this.#first);
  }

  /**
   * Index of the last stored entry, 0 when empty.
   *
   * @example
   * ```ts
   * import { FileLogStore } from "./file_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const dir = await Deno.makeTempDir();
   * const log = await FileLogStore.open(dir);
   * const data = new Uint8Array([1]);
   * await log.storeLogs([5, 6].map((index) => ({ index, term: 1, type: EntryType.Normal, data })));
   * console.log(await log.lastIndex()); // 6
   * await log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  lastIndex(): Promise<number> {
    return Promise.resolve(this.#last);
  }

  /**
   * The entry at `index`, or undefined when it is not stored.
   *
   * @throws {CorruptionError} When the record on disk fails its checksum.
   *
   * @example
   * ```ts
   * import { FileLogStore } from "./file_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const dir = await Deno.makeTempDir();
   * const log = await FileLogStore.open(dir);
   * const data = new Uint8Array([1]);
   * await log.storeLogs([{ index: 1, term: 2, type: EntryType.Normal, data }]);
   * console.log((await log.getLog(1))?.term, await log.getLog(2)); // 2 undefined
   * await log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  getLog(index: number): Promise<Entry | undefined> {
    if (this.#closed) return Promise.reject(new StorageError("the log store is closed"));
    if (this.#last === 0 || !(index >= this.#first && index <= this.#last)) {
      return Promise.resolve(undefined);
    }
    if (index >= this.#cacheLo) {
      const e = this.#ring[index % this.#ring.length];
      if (e !== undefined && e.index === index) {
        this.#stats.cacheHits++;
        return Promise.resolve(e);
      }
    }
    return this.#readRange(index, index).then((r) => r[0]);
  }

  /**
   * Entries `from..to` inclusive that are stored, in order; with `maxBytes`,
   * only the leading ones whose data fit in it (at least one). The budget is
   * applied before reading (the offset index knows every record's size), so
   * one read is never larger than it.
   *
   * @throws {CorruptionError} When a record on disk fails its checksum.
   *
   * @example
   * ```ts
   * import { FileLogStore } from "./file_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const dir = await Deno.makeTempDir();
   * const log = await FileLogStore.open(dir);
   * const data = new Uint8Array([1]);
   * await log.storeLogs([1, 2, 3].map((index) => ({ index, term: 1, type: EntryType.Normal, data })));
   * console.log((await log.getLogs(2, 10)).map((e) => e.index)); // [2, 3]
   * await log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  getLogs(from: number, to: number, maxBytes = Infinity): Promise<Entry[]> {
    if (this.#closed) return Promise.reject(new StorageError("the log store is closed"));
    if (this.#last === 0) return Promise.resolve([]);
    const lo = Math.max(Math.ceil(from), this.#first);
    let hi = Math.min(Math.floor(to), this.#last);
    if (!(lo <= hi)) return Promise.resolve([]);
    if (maxBytes !== Infinity) hi = this.#lastWithin(lo, hi, maxBytes);
    // Take the cached part now: after an await the ring may have moved on.
    const cachedFrom = Math.max(lo, this.#cacheLo);
    const cached: Entry[] = [];
    if (cachedFrom <= hi) {
      const ring = this.#ring;
      for (let i = cachedFrom; i <= hi; i++) {
        const e = ring[i % ring.length];
        if (e === undefined || e.index !== i) {
          cached.length = 0; // should not happen; read everything from disk
          return this.#readRange(lo, hi);
        }
        cached.push(e);
      }
      this.#stats.cacheHits += cached.length;
      if (cachedFrom === lo) return Promise.resolve(cached);
    }
    return this.#readRange(lo, Math.min(hi, cachedFrom - 1)).then((disk) => {
      for (let k = 0; k < cached.length; k++) disk.push(cached[k]);
      return disk;
    });
  }

  /**
   * Append a batch whose first index is `lastIndex() + 1` (any index when
   * the log is empty). Resolves once the batch is on disk (fdatasync).
   *
   * @throws {RangeError} When the batch's indexes are not contiguous or do not follow the log.
   * @throws {StorageError} When the write or the sync failed; the store then
   *   refuses further writes until reopened.
   *
   * @example
   * ```ts
   * import { FileLogStore } from "./file_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const dir = await Deno.makeTempDir();
   * const log = await FileLogStore.open(dir);
   * const data = new Uint8Array([1]);
   * await log.storeLogs([{ index: 1, term: 1, type: EntryType.Normal, data }]); // on disk now
   * await log.storeLogs([{ index: 9, term: 1, type: EntryType.Normal, data }])
   *   .catch((e: Error) => console.log(e.name)); // RangeError: 2 was expected
   * await log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  storeLogs(entries: Entry[]): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageError("the log store is closed"));
    if (this.#failed) return Promise.reject(this.#failedError());
    const n = entries.length;
    if (n === 0) return Promise.resolve();
    const first = entries[0].index;
    if (!Number.isSafeInteger(first) || first < 1) {
      return Promise.reject(
        new RangeError(`storeLogs: entry indexes must be integers >= 1, got ${first}`),
      );
    }
    let bytes = 0;
    for (let k = 0; k < n; k++) {
      const e = entries[k];
      if (e.index !== first + k) {
        return Promise.reject(
          new RangeError(
            `storeLogs: batch indexes must be contiguous: expected ${
              first + k
            } at position ${k}, got ${e.index}`,
          ),
        );
      }
      bytes += RECORD_HEADER_BYTES + e.data.length;
    }
    return new Promise<void>((resolve, reject) => {
      this.#ops.push({ kind: "append", entries, bytes, resolve, reject });
      this.#pump();
    });
  }

  /**
   * Delete entries `min..max` inclusive: a prefix (after a snapshot) or a
   * suffix (a follower's conflicting tail). Whole segment files below a
   * prefix are removed; the new first index is persisted.
   *
   * @throws {RangeError} For a range strictly inside the log.
   * @throws {StorageError} When the files cannot be changed.
   *
   * @example
   * ```ts
   * import { FileLogStore } from "./file_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const dir = await Deno.makeTempDir();
   * const log = await FileLogStore.open(dir);
   * const data = new Uint8Array([1]);
   * await log.storeLogs([1, 2, 3, 4].map((index) => ({ index, term: 1, type: EntryType.Normal, data })));
   * await log.deleteRange(1, 2); // compaction after a snapshot at 2
   * await log.deleteRange(4, 4); // a conflicting tail
   * console.log(await log.firstIndex(), await log.lastIndex()); // 3 3
   * await log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  deleteRange(min: number, max: number): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageError("the log store is closed"));
    if (this.#failed) return Promise.reject(this.#failedError());
    if (Number.isNaN(min) || Number.isNaN(max)) {
      return Promise.reject(new RangeError(`deleteRange: expected numbers, got ${min}..${max}`));
    }
    return new Promise<void>((resolve, reject) => {
      this.#ops.push({ kind: "delete", min, max, resolve, reject });
      this.#pump();
    });
  }

  /**
   * Wait for queued writes, then release files and handles.
   *
   * @example
   * ```ts
   * import { FileLogStore } from "./file_log_store.ts";
   * import { EntryType } from "../core/types.ts";
   * const dir = await Deno.makeTempDir();
   * const log = await FileLogStore.open(dir);
   * const data = new Uint8Array([1]);
   * await log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#running) await this.#pumping;
    await this.#drainReads();
    await this.#closeHandles();
  }

  // ---------------------------------------------------------------- writes

  #pump(): void {
    if (this.#running) return;
    this.#running = true;
    this.#pumping = this.#runOps();
  }

  async #runOps(): Promise<void> {
    const ops = this.#ops;
    while (ops.length > 0) {
      try {
        await this.#runNext(ops);
      } catch (e) {
        this.#fail(e, "running queued operations"); // not expected: #runNext settles every op
      }
    }
    // Same synchronous turn as the emptiness check above: an op pushed after
    // this point starts a new runner.
    this.#running = false;
  }

  async #runNext(ops: Op[]): Promise<void> {
    if (ops[0].kind === "delete") {
      const op = ops.shift() as DeleteOp;
      if (this.#failed) {
        op.reject(this.#failedError());
        return;
      }
      try {
        await this.#delete(op.min, op.max);
        op.resolve();
      } catch (e) {
        op.reject(e);
      }
      return;
    }
    const group = this.#takeAppendGroup();
    if (group.length > 0) await this.#append(group);
  }

  /** Leading append ops that can go out as one write; rejects the ones that do not fit the log. */
  #takeAppendGroup(): AppendOp[] {
    const ops = this.#ops;
    const group: AppendOp[] = [];
    let bytes = 0;
    let next = this.#last === 0 ? undefined : this.#last + 1;
    while (ops.length > 0 && ops[0].kind === "append") {
      const op = ops[0];
      if (group.length > 0 && bytes + op.bytes > MAX_GROUP_BYTES) break;
      ops.shift();
      if (this.#failed) {
        op.reject(this.#failedError());
        continue;
      }
      const first = op.entries[0].index;
      if (next !== undefined && first !== next) {
        op.reject(
          new RangeError(
            `storeLogs: expected the batch to start at index ${next} (last index + 1), got ${first}`,
          ),
        );
        continue;
      }
      group.push(op);
      bytes += op.bytes;
      next = first + op.entries.length;
    }
    return group;
  }

  async #append(group: AppendOp[]): Promise<void> {
    let bytes = 0;
    let count = 0;
    for (const op of group) {
      bytes += op.bytes;
      count += op.entries.length;
    }
    const firstIndex = group[0].entries[0].index;
    try {
      // Synchronous when the open segment takes the batch (almost always), so
      // the write and its fdatasync start before the caller's next step.
      const seg = this.#openSegmentFor(bytes) ?? await this.#segmentFor(firstIndex, bytes);
      const writer = this.#writer as FileHandle;
      if (seg.offsets.length < seg.count + count) {
        const grown = new Uint32Array(Math.max(seg.offsets.length * 2, seg.count + count, 1024));
        grown.set(seg.offsets.subarray(0, seg.count));
        seg.offsets = grown;
      }
      const buf = this.#writeBufferFor(bytes);
      let pos = 0;
      let slot = seg.count;
      for (const op of group) {
        pos = encodeRecords(op.entries, buf, pos, seg.offsets, slot, seg.size, slot - seg.count);
        slot += op.entries.length;
      }
      this.#stats.writes++;
      await writer.write(buf);
      this.#stats.syncs++;
      await writer.dataSync();
      // Durable: publish.
      const wasEmpty = this.#last === 0;
      seg.count += count;
      seg.size += bytes;
      const newLast = firstIndex + count - 1;
      this.#last = newLast;
      if (wasEmpty) this.#first = firstIndex;
      this.#stats.entriesWritten += count;
      this.#stats.bytesWritten += bytes;
      this.#cacheAppend(group, count, wasEmpty ? firstIndex : this.#cacheLo, newLast);
    } catch (e) {
      const err = this.#fail(e, `appending entries ${firstIndex}..${firstIndex + count - 1}`);
      for (const op of group) op.reject(err);
      return;
    }
    for (const op of group) op.resolve();
  }

  /** A buffer of exactly `bytes` for one write (valid until the next write starts). */
  #writeBufferFor(bytes: number): Uint8Array {
    if (bytes > REUSED_WRITE_BUFFER_BYTES) return new Uint8Array(bytes);
    if (this.#writeBuffer.length < bytes) {
      this.#writeBuffer = new Uint8Array(
        Math.min(
          REUSED_WRITE_BUFFER_BYTES,
          Math.max(bytes, this.#writeBuffer.length * 2, 64 * 1024),
        ),
      );
    }
    return this.#writeBuffer.subarray(0, bytes);
  }

  #cacheAppend(group: AppendOp[], count: number, lo: number, newLast: number): void {
    const ring = this.#ring;
    const size = ring.length;
    if (size === 0) {
      this.#cacheLo = newLast + 1;
      return;
    }
    let skip = count - size; // only the newest `size` entries matter
    for (const op of group) {
      const es = op.entries;
      let k = 0;
      if (skip > 0) {
        k = Math.min(skip, es.length);
        skip -= k;
      }
      for (; k < es.length; k++) ring[es[k].index % size] = es[k];
    }
    this.#cacheLo = Math.max(lo, newLast - size + 1);
  }

  /** The segment being written, if the next write of `bytes` goes there without any change. */
  #openSegmentFor(bytes: number): Segment | undefined {
    const seg = this.#writerSeg;
    if (
      seg === undefined || this.#last === 0 || seg !== this.#segments.at(-1) ||
      this.#mustRoll(seg, bytes) || seg.size + bytes > MAX_SEGMENT_FILE_BYTES
    ) {
      return undefined; // #segmentFor rolls, or refuses a batch no segment holds
    }
    return seg;
  }

  /** Whether a write of `bytes` must start a new segment instead of going into `seg`. */
  #mustRoll(seg: Segment, bytes: number): boolean {
    return seg.count > 0 &&
      (seg.size + bytes > this.#segmentBytes || seg.size + bytes > MAX_SEGMENT_FILE_BYTES);
  }

  /** The segment the next write of `bytes` starting at `firstIndex` goes to; rolls when full. */
  async #segmentFor(firstIndex: number, bytes: number): Promise<Segment> {
    let seg = this.#segments.at(-1);
    if (this.#last === 0) {
      // Empty log: a leftover empty segment may name another index, and an
      // old logical first index must not apply to the new entries.
      if (seg !== undefined && seg.base !== firstIndex) {
        await this.#dropSegments(this.#segments.splice(0), true);
        seg = undefined;
      }
      if (this.#metaFirst !== 0) await this.#writeMeta(0);
    }
    if (seg === undefined || this.#mustRoll(seg, bytes)) {
      seg = await this.#createSegment(firstIndex);
    }
    if (seg.size + bytes > MAX_SEGMENT_FILE_BYTES) {
      throw new RangeError(`a batch of ${bytes} bytes does not fit in a segment (max 4 GiB)`);
    }
    if (this.#writerSeg !== seg) await this.#openWriter(seg);
    return seg;
  }

  async #createSegment(base: number): Promise<Segment> {
    const prev = this.#segments.at(-1);
    if (prev !== undefined && prev.offsets.length > prev.count) {
      prev.offsets = prev.offsets.slice(0, prev.count); // sealed: give back spare capacity
    }
    await this.#closeWriter();
    const path = `${this.#dir}/${segmentFileName(base)}`;
    // No truncate with append (Deno refuses it); a stale file of this name can
    // only be a leftover without acknowledged records.
    await this.#fs.remove(path);
    const w = await this.#fs.open(path, { write: true, append: true, create: true });
    this.#writer = w;
    await w.write(encodeSegmentHeader(base));
    // The header is durable before any record: a bad header on the last
    // segment then always means an interrupted creation.
    this.#stats.syncs++;
    await w.dataSync();
    this.#stats.syncs++;
    await this.#fs.syncDir(this.#dir);
    const seg: Segment = {
      base,
      path,
      count: 0,
      offsets: new Uint32Array(1024),
      size: SEGMENT_HEADER_BYTES,
      reader: undefined,
      inflight: 0,
    };
    this.#segments.push(seg);
    this.#writerSeg = seg;
    return seg;
  }

  async #openWriter(seg: Segment): Promise<void> {
    await this.#closeWriter();
    this.#writer = await this.#fs.open(seg.path, { write: true, append: true });
    this.#writerSeg = seg;
  }

  async #closeWriter(): Promise<void> {
    const w = this.#writer;
    this.#writer = undefined;
    this.#writerSeg = undefined;
    if (w !== undefined) await w.close();
  }

  // --------------------------------------------------------------- deletes

  async #delete(min: number, max: number): Promise<void> {
    if (this.#last === 0) return;
    const lo = Math.max(Math.ceil(min), this.#first);
    const hi = Math.min(Math.floor(max), this.#last);
    if (lo > hi) return;
    const what = `deleting entries ${lo}..${hi}`;
    if (lo === this.#first && hi === this.#last) {
      await this.#guard(what, () => this.#deleteAll());
    } else if (lo === this.#first) {
      await this.#guard(what, () => this.#deletePrefix(hi + 1));
    } else if (hi === this.#last) {
      await this.#guard(what, () => this.#deleteSuffix(lo));
    } else {
      throw new RangeError(
        `deleteRange: expected a prefix (from ${this.#first}) or a suffix (to ${this.#last}), got ${min}..${max}`,
      );
    }
  }

  async #guard(what: string, f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (e) {
      throw this.#fail(e, what);
    }
  }

  async #deleteAll(): Promise<void> {
    const dropped = this.#segments;
    this.#segments = [];
    this.#first = 0;
    this.#last = 0;
    this.#cacheLo = 1;
    this.#ring.fill(undefined);
    await this.#dropSegments(dropped, true);
  }

  async #deletePrefix(newFirst: number): Promise<void> {
    const segs = this.#segments;
    let drop = 0;
    while (drop + 1 < segs.length && segs[drop + 1].base <= newFirst) drop++;
    const dropped = segs.slice(0, drop);
    this.#segments = segs.slice(drop);
    this.#first = newFirst;
    if (this.#cacheLo < newFirst) this.#cacheLo = newFirst;
    // The meta file must say where the log starts before older segments go;
    // when the new first index is a segment's first, the names say it.
    if (newFirst !== this.#segments[0].base || this.#metaFirst > newFirst) {
      await this.#writeMeta(newFirst);
    }
    if (dropped.length > 0) await this.#dropSegments(dropped, false);
  }

  async #deleteSuffix(lo: number): Promise<void> {
    const segs = this.#segments;
    let keep = segs.length;
    while (keep > 1 && segs[keep - 1].base >= lo) keep--;
    const dropped = segs.slice(keep);
    const tail = segs[keep - 1];
    this.#segments = segs.slice(0, keep);
    const newCount = lo - tail.base;
    const cut = newCount < tail.count;
    if (cut) {
      tail.size = tail.offsets[newCount];
      tail.count = newCount;
    }
    this.#last = lo - 1;
    if (this.#cacheLo > this.#last) this.#cacheLo = this.#last + 1;
    // Newest first, so a crash part way leaves a prefix of the segments.
    if (dropped.length > 0) await this.#dropSegments(dropped, true);
    if (this.#writerSeg !== tail) await this.#openWriter(tail);
    if (cut) {
      await this.#drainReads();
      const w = this.#writer as FileHandle;
      await w.truncate(tail.size);
      this.#stats.syncs++;
      await w.sync();
    }
  }

  /** Close and remove segment files (oldest or newest first), then fsync the directory. */
  async #dropSegments(dropped: Segment[], newestFirst: boolean): Promise<void> {
    if (dropped.length === 0) return;
    await this.#drainReads();
    if (this.#writerSeg !== undefined && dropped.includes(this.#writerSeg)) {
      await this.#closeWriter();
    }
    const order = newestFirst ? [...dropped].reverse() : dropped;
    for (const seg of order) {
      await this.#closeReader(seg);
      await this.#fs.remove(seg.path);
    }
    this.#stats.syncs++;
    await this.#fs.syncDir(this.#dir);
  }

  async #writeMeta(first: number): Promise<void> {
    const b = new Uint8Array(META_BYTES);
    const v = new DataView(b.buffer);
    v.setUint32(0, META_MAGIC);
    v.setUint16(4, META_VERSION);
    v.setUint32(8, Math.floor(first / 0x1_0000_0000));
    v.setUint32(12, first >>> 0);
    v.setUint32(16, crc32c(b, 0, 16));
    this.#stats.syncs += 2;
    await writeFileAtomic(this.#fs, this.#dir, META_FILE, b);
    this.#metaFirst = first;
  }

  // ----------------------------------------------------------------- reads

  #findSegment(index: number): number {
    const segs = this.#segments;
    let lo = 0;
    let hi = segs.length - 1;
    if (index >= segs[hi].base) return hi;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (segs[mid].base <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  #reader(seg: Segment): Promise<FileHandle> {
    const open = this.#openReaders;
    open.delete(seg); // re-added last: most recently used
    open.add(seg);
    if (seg.reader === undefined) {
      const r = this.#fs.open(seg.path, { read: true });
      seg.reader = r;
      r.catch(() => {
        if (seg.reader === r) {
          seg.reader = undefined;
          open.delete(seg);
        }
      });
      if (open.size > MAX_OPEN_READERS) this.#trimReaders();
    }
    return seg.reader;
  }

  /** Close least recently used readers that no read is using, down to the cap. */
  #trimReaders(): void {
    const open = this.#openReaders;
    for (const old of open) {
      if (open.size <= MAX_OPEN_READERS) break;
      if (old.inflight === 0 && old !== this.#segments.at(-1)) {
        this.#closeReader(old).catch(() => {});
      }
    }
  }

  async #closeReader(seg: Segment): Promise<void> {
    const r = seg.reader;
    seg.reader = undefined;
    this.#openReaders.delete(seg);
    if (r !== undefined) await r.then((h) => h.close(), () => {});
  }

  /** The last index of `lo..hi` (all stored) such that the data of `lo..` fit in `maxBytes` (at least `lo`). */
  #lastWithin(lo: number, hi: number, maxBytes: number): number {
    const segs = this.#segments;
    let si = this.#findSegment(lo);
    let bytes = 0;
    for (let i = lo; i <= hi; i++) {
      let seg = segs[si];
      while (i >= seg.base + seg.count) seg = segs[++si];
      const k = i - seg.base;
      const end = k + 1 < seg.count ? seg.offsets[k + 1] : seg.size;
      bytes += end - seg.offsets[k] - RECORD_HEADER_BYTES;
      if (bytes > maxBytes && i > lo) return i - 1;
    }
    return hi;
  }

  /** Read `lo..hi` (all stored) from the segment files: one positioned read per segment. */
  async #readRange(lo: number, hi: number): Promise<Entry[]> {
    // Plan synchronously: a concurrent delete changes the index, and waits
    // for this read (#readers) before it changes files.
    const plan: { seg: Segment; index: number; n: number; start: number; end: number }[] = [];
    let si = this.#findSegment(lo);
    for (let i = lo; i <= hi; si++) {
      const seg = this.#segments[si];
      const k = i - seg.base;
      const kEnd = Math.min(hi - seg.base, seg.count - 1);
      const end = kEnd + 1 < seg.count ? seg.offsets[kEnd + 1] : seg.size;
      plan.push({ seg, index: i, n: kEnd - k + 1, start: seg.offsets[k], end });
      i = seg.base + kEnd + 1;
    }
    this.#readers++;
    try {
      const out: Entry[] = [];
      for (const p of plan) {
        const len = p.end - p.start;
        const buf = new Uint8Array(len);
        let got: number;
        p.seg.inflight++;
        try {
          const h = await this.#reader(p.seg);
          this.#stats.diskReads++;
          got = await h.readAt(buf, p.start);
        } catch (e) {
          throw new StorageError(
            `cannot read entries from ${p.seg.path} at offset ${p.start}: ${describe(e)}`,
            { cause: e },
          );
        } finally {
          if (--p.seg.inflight === 0 && this.#openReaders.size > MAX_OPEN_READERS) {
            this.#trimReaders();
          }
        }
        if (got < len) {
          throw new CorruptionError(
            `segment is shorter than its index says: expected ${len} bytes at offset ${p.start}, read ${got}`,
            { file: p.seg.path, offset: p.start + got },
          );
        }
        const view = new DataView(buf.buffer);
        let pos = 0;
        for (let k = 0; k < p.n; k++) {
          const idx = p.index + k;
          const h = checkRecord(buf, pos, len, idx, view);
          if (h === undefined) {
            throw new CorruptionError(`record of entry ${idx} fails its checksum or header check`, {
              file: p.seg.path,
              offset: p.start + pos,
            });
          }
          out.push(decodeRecord(buf, pos, h));
          pos += h.size;
        }
      }
      return out;
    } finally {
      if (--this.#readers === 0) {
        const waiters = this.#drainWaiters;
        this.#drainWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  #drainReads(): Promise<void> {
    if (this.#readers === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  // ---------------------------------------------------------- failure/close

  #fail(e: unknown, what: string): unknown {
    if (e instanceof RangeError || e instanceof CorruptionError) return e;
    const err = new StorageError(`log store in ${this.#dir}: ${what} failed: ${describe(e)}`, {
      cause: e,
    });
    // After a failed write or fsync the file's state is unknown (and the
    // kernel may have dropped dirty pages): refuse writes until reopened.
    this.#failed ??= err;
    this.#log.error("Log store {dir} failed while {what}: {error}", {
      dir: this.#dir,
      what,
      error: describe(e),
    });
    return err;
  }

  #failedError(): StorageError {
    return new StorageError(
      `the log store in ${this.#dir} failed earlier and must be reopened: ${this.#failed?.message}`,
      { cause: this.#failed },
    );
  }

  async #closeHandles(): Promise<void> {
    await this.#closeWriter().catch(() => {});
    for (const seg of this.#segments) await this.#closeReader(seg).catch(() => {});
  }

  // ------------------------------------------------------------------ open

  async #load(): Promise<void> {
    const fs = this.#fs;
    await fs.mkdirp(this.#dir);
    const bases: number[] = [];
    for (const e of await fs.readDir(this.#dir)) {
      if (e.name === `${META_FILE}.tmp`) {
        await fs.remove(`${this.#dir}/${e.name}`);
        continue;
      }
      const b = parseSegmentFileName(e.name);
      if (b !== undefined && e.isFile) bases.push(b);
    }
    bases.sort((a, b) => a - b);
    this.#metaFirst = await this.#readMeta();

    for (let k = 0; k < bases.length; k++) {
      const seg = await this.#scanSegment(bases[k], k === bases.length - 1);
      if (seg === undefined) continue;
      const prev = this.#segments.at(-1);
      if (prev !== undefined && seg.base !== prev.base + prev.count) {
        throw new CorruptionError(
          `segments are not contiguous: expected the segment after ${prev.path} (${prev.count} records) to start at index ${
            prev.base + prev.count
          }, found ${seg.base}`,
          { file: seg.path },
        );
      }
      this.#segments.push(seg);
    }

    const segs = this.#segments;
    let records = 0;
    for (const s of segs) records += s.count;
    const lastSeg = segs.at(-1);
    const last = lastSeg === undefined ? 0 : lastSeg.base + lastSeg.count - 1;
    const first = segs.length === 0 ? 0 : Math.max(this.#metaFirst, segs[0].base);
    if (records === 0 || first > last) {
      // Nothing to keep (e.g. a delete-all was interrupted).
      await this.#dropSegments(this.#segments.splice(0), true);
      this.#first = 0;
      this.#last = 0;
      this.#cacheLo = 1;
      return;
    }
    this.#first = first;
    this.#last = last;
    this.#cacheLo = last + 1;
    // Finish an interrupted prefix deletion: whole segments below `first`.
    let drop = 0;
    while (drop + 1 < segs.length && segs[drop + 1].base <= first) drop++;
    if (drop > 0) await this.#dropSegments(this.#segments.splice(0, drop), false);
    const tail = this.#segments.at(-1) as Segment;
    if (tail.offsets.length === tail.count) {
      const grown = new Uint32Array(Math.max(1024, tail.count * 2));
      grown.set(tail.offsets);
      tail.offsets = grown;
    }
    await this.#openWriter(tail);
    // What we found may be in the page cache only: a process that died
    // between a write and its fsync (or a segment's removal and the
    // directory's fsync) leaves it readable but not durable. Raft builds on
    // what the log holds at open, so make it durable first; otherwise a
    // power loss later drops a record under later segments, or brings a
    // removed segment back.
    this.#stats.syncs += 2;
    await (this.#writer as FileHandle).sync();
    await fs.syncDir(this.#dir);
  }

  async #readMeta(): Promise<number> {
    const path = `${this.#dir}/${META_FILE}`;
    let b: Uint8Array;
    try {
      b = await this.#fs.readFile(path);
    } catch (e) {
      if (this.#fs.isNotFound(e)) return 0;
      throw e;
    }
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (
      b.length !== META_BYTES || v.getUint32(0) !== META_MAGIC ||
      v.getUint16(4) !== META_VERSION || v.getUint32(16) !== crc32c(b, 0, 16)
    ) {
      throw new CorruptionError(
        `log meta file is damaged: expected ${META_BYTES} bytes with magic RDLM v${META_VERSION} and a valid checksum, got ${b.length} bytes`,
        { file: path, offset: 0 },
      );
    }
    return v.getUint32(8) * 0x1_0000_0000 + v.getUint32(12);
  }

  /**
   * Build the offset index of one segment, verifying every record. Returns
   * undefined when the (last) segment was an interrupted creation and was removed.
   */
  async #scanSegment(base: number, isLast: boolean): Promise<Segment | undefined> {
    const fs = this.#fs;
    const path = `${this.#dir}/${segmentFileName(base)}`;
    const reader = fs.open(path, { read: true });
    const seg: Segment = {
      base,
      path,
      count: 0,
      offsets: new Uint32Array(0),
      size: 0,
      reader,
      inflight: 0,
    };
    let ok = false;
    try {
      const h = await reader;
      const fileSize = (await h.stat()).size;
      const header = new Uint8Array(SEGMENT_HEADER_BYTES);
      const got = await h.readAt(header, 0);
      const headerBase = got === SEGMENT_HEADER_BYTES ? decodeSegmentHeader(header) : undefined;
      if (headerBase !== base) {
        if (headerBase !== undefined || !isLast) {
          throw new CorruptionError(
            `segment header is damaged or names another index: expected first index ${base}, got ${
              headerBase ?? "an invalid header"
            }`,
            { file: path, offset: 0 },
          );
        }
        // The header is synced before any record is written, so a bad
        // header on the last segment is an interrupted creation — unless a
        // record follows it.
        const probe = new Uint8Array(Math.min(fileSize, SCAN_CHUNK_BYTES));
        const n = await h.readAt(probe, 0);
        if (checkRecord(probe, SEGMENT_HEADER_BYTES, n, base) !== undefined) {
          throw new CorruptionError(`segment header is damaged but records follow it`, {
            file: path,
            offset: 0,
          });
        }
        this.#log.warn(
          "Removing log segment {file} whose creation was interrupted ({size} bytes, no valid header)",
          { file: path, size: fileSize },
        );
        await h.close();
        seg.reader = undefined;
        await fs.remove(path);
        await fs.syncDir(this.#dir);
        ok = true;
        return undefined;
      }

      let offsets = new Uint32Array(1024);
      let count = 0;
      let pos = SEGMENT_HEADER_BYTES;
      let unitStart = base;
      // Sequential scan through a window buffer.
      let buf = new Uint8Array(Math.min(SCAN_CHUNK_BYTES, fileSize));
      let view = new DataView(buf.buffer);
      let winStart = 0;
      let winEnd = 0;
      const ensure = async (off: number, n: number): Promise<boolean> => {
        if (off >= winStart && off + n <= winEnd) return true;
        if (off + n > fileSize) return false;
        const len = Math.min(Math.max(n, SCAN_CHUNK_BYTES), fileSize - off);
        if (buf.length < len) {
          buf = new Uint8Array(len);
          view = new DataView(buf.buffer);
        }
        const r = await h.readAt(buf.subarray(0, len), off);
        winStart = off;
        winEnd = off + r;
        return r >= n;
      };
      let bad = -1;
      while (pos < fileSize) {
        if (!(await ensure(pos, RECORD_HEADER_BYTES))) {
          bad = pos;
          break;
        }
        const size = RECORD_HEADER_BYTES + view.getUint32(pos - winStart + 4);
        if (pos + size > fileSize || pos + size > MAX_SEGMENT_FILE_BYTES) {
          bad = pos;
          break;
        }
        await ensure(pos, size);
        const rec = checkRecord(buf, pos - winStart, winEnd - winStart, base + count, view);
        if (rec === undefined) {
          bad = pos;
          break;
        }
        if (count === offsets.length) {
          const grown = new Uint32Array(offsets.length * 2);
          grown.set(offsets);
          offsets = grown;
        }
        offsets[count++] = pos;
        unitStart = rec.unitStart;
        pos += rec.size;
      }
      if (bad >= 0) {
        if (!isLast) {
          throw new CorruptionError(
            `record of entry ${base + count} is damaged (checksum, length or header mismatch)`,
            { file: path, offset: bad },
          );
        }
        await this.#checkTornTail(
          h,
          path,
          bad,
          fileSize,
          base + count,
          count > 0 ? unitStart : base,
        );
      }
      seg.count = count;
      seg.offsets = isLast ? offsets : offsets.slice(0, count);
      seg.size = pos;
      if (bad >= 0) {
        this.#log.warn(
          "Torn write at the end of log segment {file}: cutting {bytes} bytes at offset {offset} (last whole entry: {index})",
          { file: path, bytes: fileSize - bad, offset: bad, index: base + count - 1 },
        );
        const w = await fs.open(path, { write: true });
        try {
          await w.truncate(bad);
          await w.sync();
        } finally {
          await w.close();
        }
      }
      ok = true;
      if (isLast) {
        this.#openReaders.add(seg);
      } else {
        // Sealed segments are reopened on demand: a long log must not hold a descriptor each.
        seg.reader = undefined;
        await h.close();
      }
      return seg;
    } catch (e) {
      if (e instanceof CorruptionError) throw e;
      throw new StorageError(`cannot read log segment ${path}: ${describe(e)}`, { cause: e });
    } finally {
      if (!ok) {
        const r = seg.reader;
        seg.reader = undefined;
        if (r !== undefined) await r.then((x) => x.close(), () => {}).catch(() => {});
      }
    }
  }

  /**
   * The last segment has a bad record at `bad`. Valid records after it are
   * fine only if they belong to the same write unit as the bad one (a write
   * torn by a crash: its pages may reach the disk in any order). A valid
   * record of a later unit means the bad one had been synced: corruption.
   */
  async #checkTornTail(
    h: FileHandle,
    path: string,
    bad: number,
    fileSize: number,
    expected: number,
    prevUnitStart: number,
  ): Promise<void> {
    const tail = new Uint8Array(fileSize - bad);
    const n = await h.readAt(tail, bad);
    const view = new DataView(tail.buffer);
    let unit: number | undefined;
    for (let p = 1; p + RECORD_HEADER_BYTES <= n;) {
      const rec = checkRecord(tail, p, n, undefined, view);
      if (rec === undefined) {
        p++;
        continue;
      }
      const sameUnit = rec.index >= expected &&
        (rec.unitStart === prevUnitStart || rec.unitStart === expected) &&
        (unit === undefined || unit === rec.unitStart);
      if (!sameUnit) {
        throw new CorruptionError(
          `record of entry ${expected} is damaged and a valid record of entry ${rec.index} from a later write follows it`,
          { file: path, offset: bad },
        );
      }
      unit = rec.unitStart;
      p += rec.size;
    }
  }
}
