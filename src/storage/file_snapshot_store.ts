/**
 * Snapshots on disk, one directory each:
 *
 * ```
 * dir/<term>-<index>-<ms>/meta.json   index, term, configuration, size, CRC-32C of state.bin
 * dir/<term>-<index>-<ms>/state.bin   the FSM state, as written by the sink
 * ```
 *
 * A sink writes into `<id>.tmp/`; closing it fsyncs the state and the
 * directory, renames it to its final name, fsyncs the parent and prunes to
 * the newest `retain`. State is streamed in and out in chunks and verified
 * (size and checksum) while it is read, so a multi-GiB state never sits in
 * memory.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Logger } from "../logger.ts";
import type { Configuration, Server, SnapshotMeta } from "../core/types.ts";
import { CorruptionError, InvalidStateError, StorageError } from "../errors.ts";
import { type Clock, RealClock } from "../platform/clock.ts";
import { defaultFileSystem, type FileHandle, type FileSystem } from "../platform/fs.ts";
import { crc32c, crc32cHex, crc32cUpdate } from "./crc32c.ts";
import { compareSnapshots } from "./snapshot_order.ts";
import type { SnapshotInfo, SnapshotSink, SnapshotSource, SnapshotStore } from "./types.ts";
import { describeValue } from "../describe_value.ts";

const META = "meta.json";
const STATE = "state.bin";
const META_VERSION = 1;
const DEFAULT_CHUNK_BYTES = 256 * 1024;
const ID_RE = /^(\d+)-(\d+)-(\d+)$/;

/**
 * Options of {@linkcode FileSnapshotStore.open}.
 *
 * @example
 * ```ts
 * import type { FileSnapshotStoreOptions } from "./file_snapshot_store.ts";
 * const opts: FileSnapshotStoreOptions = { retain: 3 };
 * ```
 */
export interface FileSnapshotStoreOptions {
  /** How many snapshots to keep (default 2, at least 1). */
  retain?: number;
  /** Size of the chunks `open(id).data` yields (default 256 KiB). */
  chunkBytes?: number;
  /** Where warnings go (default the LogTape category `["raftd", "storage"]`). */
  logger?: Logger;
  /** File system to use (default the runtime's). */
  fs?: FileSystem;
  /**
   * Where the millisecond stamp of snapshot names comes from (its
   * `wallClock()`; default the system clock). A simulation passes its
   * virtual clock so names replay exactly.
   */
  clock?: Pick<Clock, "wallClock">;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Fields of meta.json in the order they are written (the meta checksum depends on it). */
interface MetaFile {
  version: number;
  id: string;
  index: number;
  term: number;
  configuration: Configuration;
  configurationIndex: number;
  size: number;
  checksum: string;
}

function metaBody(info: SnapshotInfo, checksum: string): MetaFile {
  return {
    version: META_VERSION,
    id: info.id,
    index: info.index,
    term: info.term,
    configuration: {
      servers: info.configuration.servers.map((s) => ({
        id: s.id,
        address: s.address,
        suffrage: s.suffrage,
      })),
    },
    configurationIndex: info.configurationIndex,
    size: info.size,
    checksum,
  };
}

function encodeMeta(info: SnapshotInfo, checksum: string): Uint8Array {
  const body = metaBody(info, checksum);
  const metaChecksum = crc32cHex(crc32c(new TextEncoder().encode(JSON.stringify(body))));
  return new TextEncoder().encode(JSON.stringify({ ...body, metaChecksum }, null, 2) + "\n");
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isServer(v: unknown): v is Server {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  return typeof s.id === "string" && typeof s.address === "string" &&
    (s.suffrage === "voter" || s.suffrage === "nonvoter" || s.suffrage === "staging");
}

/** Parse and check meta.json; returns the info and the state checksum, or a reason. */
function decodeMeta(
  bytes: Uint8Array,
  id: string,
): { info: SnapshotInfo; checksum: string } | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    return `not valid JSON: ${describe(e)}`;
  }
  if (typeof parsed !== "object" || parsed === null) return "not a JSON object";
  const { metaChecksum, ...rest } = parsed as Record<string, unknown>;
  // Key order of the parsed object is the file's, i.e. the writer's.
  const expected = crc32cHex(crc32c(new TextEncoder().encode(JSON.stringify(rest))));
  if (metaChecksum !== expected) {
    return `meta checksum mismatch: expected ${expected}, file says ${String(metaChecksum)}`;
  }
  const m = rest as Partial<MetaFile>;
  if (m.version !== META_VERSION) return `unknown version ${m.version} (expected ${META_VERSION})`;
  if (m.id !== id) return `names snapshot ${JSON.stringify(m.id)}, expected ${JSON.stringify(id)}`;
  if (!isCount(m.index) || !isCount(m.term) || !isCount(m.size) || !isCount(m.configurationIndex)) {
    return "index, term, size and configurationIndex must be non-negative integers";
  }
  if (typeof m.checksum !== "string" || !/^[0-9a-f]{8}$/.test(m.checksum)) {
    return "checksum must be 8 hex digits";
  }
  const servers = m.configuration?.servers;
  if (!Array.isArray(servers) || !servers.every(isServer)) return "configuration is malformed";
  return {
    info: {
      id,
      index: m.index,
      term: m.term,
      size: m.size,
      configurationIndex: m.configurationIndex,
      configuration: { servers: servers.map((s) => ({ ...s })) },
    },
    checksum: m.checksum,
  };
}

/**
 * A {@linkcode SnapshotStore} on disk; see the module docs.
 *
 * A corrupt snapshot is detected by its checksum: `open(id).data` throws
 * {@linkcode CorruptionError} at the end of the stream, and `verify(id)`
 * checks a snapshot without keeping its data. To start from the newest
 * good snapshot use {@linkcode openLatestValid}, or try `list()` newest
 * first and fall back to the next one when restoring throws `CorruptionError`.
 *
 * @example Write a snapshot and read it back
 * ```ts
 * import { FileSnapshotStore } from "./file_snapshot_store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await FileSnapshotStore.open(dir);
 * const sink = await store.create({
 *   index: 10, term: 2, configuration: { servers: [] }, configurationIndex: 1,
 * });
 * await sink.write(new TextEncoder().encode("state"));
 * const info = await sink.close();
 * const src = await store.open(info.id);
 * let size = 0;
 * for await (const chunk of src.data) size += chunk.length;
 * console.log(size); // 5
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FileSnapshotStore implements SnapshotStore {
  readonly #dir: string;
  readonly #fs: FileSystem;
  readonly #log: Logger;
  readonly #retain: number;
  readonly #chunkBytes: number;
  readonly #clock: Pick<Clock, "wallClock">;
  readonly #pending = new Set<string>();
  #lastMs = 0;

  private constructor(dir: string, options: FileSnapshotStoreOptions) {
    this.#dir = dir.replace(/[\\/]+$/, "") || dir;
    this.#fs = options.fs ?? defaultFileSystem();
    // Only wallClock() is used: a RealClock holds nothing until queueTask().
    this.#clock = options.clock ?? new RealClock();
    this.#log = options.logger ?? getLogger(["raftd", "storage"]);
    const retain = options.retain ?? 2;
    if (!Number.isSafeInteger(retain) || retain < 1) {
      throw new RangeError(`retain must be an integer >= 1, got ${describeValue(retain)}`);
    }
    this.#retain = retain;
    const chunk = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunk) || chunk < 1) {
      throw new RangeError(`chunkBytes must be an integer >= 1, got ${describeValue(chunk)}`);
    }
    this.#chunkBytes = chunk;
  }

  /**
   * Open (or create) the store in `dir`, removing snapshots left half
   * written (`*.tmp`) by a crash.
   *
   * @param dir Directory of the snapshots; created when missing.
   * @param options Retention, chunk size, logger, file system.
   * @returns The store.
   * @throws {StorageError} When the directory cannot be used.
   *
   * @example
   * ```ts
   * import { FileSnapshotStore } from "./file_snapshot_store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = await FileSnapshotStore.open(dir, { retain: 3 });
   * console.log((await store.list()).length); // 0
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static async open(
    dir: string,
    options: FileSnapshotStoreOptions = {},
  ): Promise<FileSnapshotStore> {
    const store = new FileSnapshotStore(dir, options);
    const fs = store.#fs;
    try {
      await fs.mkdirp(store.#dir);
      for (const e of await fs.readDir(store.#dir)) {
        if (e.name.endsWith(".tmp")) {
          store.#log.info("Removing unfinished snapshot {path}", {
            path: `${store.#dir}/${e.name}`,
          });
          await fs.remove(`${store.#dir}/${e.name}`, { recursive: true });
        }
      }
      // Also without a leftover: a snapshot renamed into place by a process
      // that died before the directory's fsync is readable but not durable,
      // and the node may compact its log on the strength of it.
      await fs.syncDir(store.#dir);
    } catch (e) {
      throw new StorageError(`cannot open the snapshot store in ${dir}: ${describe(e)}`, {
        cause: e,
      });
    }
    return store;
  }

  /**
   * Start writing a snapshot. It becomes visible to `list()` once the sink
   * is closed.
   *
   * @throws {StorageError} When the temporary directory cannot be created.
   *
   * @example
   * ```ts
   * import { FileSnapshotStore } from "./file_snapshot_store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = await FileSnapshotStore.open(dir);
   * const meta = { index: 10, term: 2, configuration: { servers: [] }, configurationIndex: 1 };
   * const sink = await store.create(meta);
   * await sink.write(new TextEncoder().encode("state"));
   * const info = await sink.close(); // now durable and listed
   * console.log(info.size); // 5
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async create(meta: SnapshotMeta): Promise<SnapshotSink> {
    if (!isCount(meta.index) || !isCount(meta.term) || !isCount(meta.configurationIndex)) {
      throw new RangeError(
        `create: index, term and configurationIndex must be non-negative integers, got ${meta.index}, ${meta.term}, ${meta.configurationIndex}`,
      );
    }
    const fs = this.#fs;
    let ms = Math.max(this.#clock.wallClock(), this.#lastMs + 1);
    let id = `${meta.term}-${meta.index}-${ms}`;
    while (this.#pending.has(id) || (await fs.exists(`${this.#dir}/${id}`))) {
      ms++;
      id = `${meta.term}-${meta.index}-${ms}`;
    }
    this.#lastMs = ms;
    this.#pending.add(id);
    const tmp = `${this.#dir}/${id}.tmp`;
    let file: FileHandle;
    try {
      await fs.mkdirp(tmp);
      file = await fs.open(`${tmp}/${STATE}`, { write: true, create: true, truncate: true });
    } catch (e) {
      this.#pending.delete(id);
      await fs.remove(tmp, { recursive: true }).catch(() => {});
      throw new StorageError(`cannot create snapshot ${id} in ${this.#dir}: ${describe(e)}`, {
        cause: e,
      });
    }
    const info: SnapshotInfo = {
      id,
      index: meta.index,
      term: meta.term,
      size: 0,
      configurationIndex: meta.configurationIndex,
      configuration: { servers: meta.configuration.servers.map((s) => ({ ...s })) },
    };
    return new FileSnapshotSink(info, file, {
      commit: (checksum) => this.#commit(info, tmp, checksum),
      discard: () => this.#discard(id, tmp),
    });
  }

  /** Make `tmp` the snapshot `info.id` (durably), then prune. */
  async #commit(info: SnapshotInfo, tmp: string, checksum: string): Promise<void> {
    const fs = this.#fs;
    try {
      const metaFile = await fs.open(`${tmp}/${META}`, {
        write: true,
        create: true,
        truncate: true,
      });
      try {
        await metaFile.write(encodeMeta(info, checksum));
        await metaFile.sync();
      } finally {
        await metaFile.close();
      }
      await fs.syncDir(tmp);
      await fs.rename(tmp, `${this.#dir}/${info.id}`);
      await fs.syncDir(this.#dir);
    } finally {
      this.#pending.delete(info.id);
    }
    try {
      await this.#prune();
    } catch (e) {
      // The new snapshot is durable; failing to drop old ones is not worth failing it.
      this.#log.warn("Cannot prune old snapshots in {dir}: {error}", {
        dir: this.#dir,
        error: describe(e),
      });
    }
  }

  async #discard(id: string, tmp: string): Promise<void> {
    this.#pending.delete(id);
    await this.#fs.remove(tmp, { recursive: true });
  }

  async #prune(): Promise<void> {
    const all = await this.list();
    for (const old of all.slice(this.#retain)) {
      await this.#fs.remove(`${this.#dir}/${old.id}`, { recursive: true });
    }
    if (all.length > this.#retain) await this.#fs.syncDir(this.#dir);
  }

  /**
   * Snapshots whose metadata is readable, newest first. Ones with damaged
   * metadata are skipped with a warning.
   *
   * @throws {StorageError} When the directory cannot be listed.
   *
   * @example
   * ```ts
   * import { FileSnapshotStore } from "./file_snapshot_store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = await FileSnapshotStore.open(dir);
   * const meta = { index: 10, term: 2, configuration: { servers: [] }, configurationIndex: 1 };
   * await (await store.create(meta)).close();
   * await (await store.create({ ...meta, index: 20 })).close();
   * console.log((await store.list()).map((s) => s.index)); // [20, 10]
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async list(): Promise<SnapshotInfo[]> {
    let entries;
    try {
      entries = await this.#fs.readDir(this.#dir);
    } catch (e) {
      throw new StorageError(`cannot list snapshots in ${this.#dir}: ${describe(e)}`, { cause: e });
    }
    const out: SnapshotInfo[] = [];
    for (const e of entries) {
      if (!e.isDirectory || !ID_RE.test(e.name)) continue;
      const r = await this.#readMeta(e.name);
      if (typeof r === "string") {
        this.#log.warn("Skipping snapshot {id} in {dir}: meta.json {reason}", {
          id: e.name,
          dir: this.#dir,
          reason: r,
        });
        continue;
      }
      out.push(r.info);
    }
    return out.sort(compareSnapshots);
  }

  async #readMeta(id: string): Promise<{ info: SnapshotInfo; checksum: string } | string> {
    let bytes: Uint8Array;
    try {
      bytes = await this.#fs.readFile(`${this.#dir}/${id}/${META}`);
    } catch (e) {
      return this.#fs.isNotFound(e) ? "is missing" : `cannot be read: ${describe(e)}`;
    }
    return decodeMeta(bytes, id);
  }

  /**
   * Open snapshot `id` for reading. `data` streams `state.bin` in chunks,
   * checking size and checksum as it goes; it throws
   * {@linkcode CorruptionError} at the end when they do not match (so a
   * consumer must not trust what it restored until the stream ends).
   *
   * @throws {StorageError} When there is no snapshot `id`.
   * @throws {CorruptionError} When its metadata is damaged or the state has the wrong size.
   *
   * @example
   * ```ts
   * import { FileSnapshotStore } from "./file_snapshot_store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = await FileSnapshotStore.open(dir);
   * const meta = { index: 10, term: 2, configuration: { servers: [] }, configurationIndex: 1 };
   * const sink = await store.create(meta);
   * await sink.write(new Uint8Array(3));
   * const src = await store.open((await sink.close()).id);
   * let bytes = 0;
   * for await (const chunk of src.data) bytes += chunk.length; // checksum verified at the end
   * console.log(src.info.index, bytes); // 10 3
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async open(id: string): Promise<SnapshotSource> {
    if (!ID_RE.test(id)) {
      throw new RangeError(
        `expected a snapshot id like <term>-<index>-<ms>, got ${JSON.stringify(id)}`,
      );
    }
    const fs = this.#fs;
    const dir = `${this.#dir}/${id}`;
    if (!(await fs.exists(dir))) throw new StorageError(`no snapshot ${id} in ${this.#dir}`);
    const r = await this.#readMeta(id);
    if (typeof r === "string") {
      throw new CorruptionError(`snapshot ${id}: meta.json ${r}`, { file: `${dir}/${META}` });
    }
    const path = `${dir}/${STATE}`;
    let size: number;
    try {
      size = (await fs.stat(path)).size;
    } catch (e) {
      if (fs.isNotFound(e)) {
        throw new CorruptionError(`snapshot ${id}: state.bin is missing`, { file: path });
      }
      throw new StorageError(`cannot stat ${path}: ${describe(e)}`, { cause: e });
    }
    if (size !== r.info.size) {
      throw new CorruptionError(
        `snapshot ${id}: state.bin has ${size} bytes, meta.json says ${r.info.size}`,
        { file: path, offset: Math.min(size, r.info.size) },
      );
    }
    return { info: r.info, data: this.#stream(path, r.info.size, r.checksum) };
  }

  async *#stream(path: string, size: number, checksum: string): AsyncGenerator<Uint8Array> {
    const fs = this.#fs;
    let file: FileHandle;
    try {
      file = await fs.open(path, { read: true });
    } catch (e) {
      throw new StorageError(`cannot open ${path}: ${describe(e)}`, { cause: e });
    }
    try {
      let pos = 0;
      let crc = 0;
      while (true) {
        // Read one byte past the expected end to notice a file that grew.
        const want = Math.min(this.#chunkBytes, size - pos + 1);
        const buf = new Uint8Array(want);
        let n: number;
        try {
          n = await file.readAt(buf, pos);
        } catch (e) {
          throw new StorageError(`cannot read ${path} at offset ${pos}: ${describe(e)}`, {
            cause: e,
          });
        }
        if (pos + n > size) {
          throw new CorruptionError(`snapshot state is longer than the ${size} bytes recorded`, {
            file: path,
            offset: size,
          });
        }
        if (n === 0) break;
        crc = crc32cUpdate(crc, buf, 0, n);
        pos += n;
        yield n === buf.length ? buf : buf.subarray(0, n);
        if (n < want) break;
      }
      if (pos !== size) {
        throw new CorruptionError(
          `snapshot state is shorter than recorded: expected ${size} bytes, read ${pos}`,
          { file: path, offset: pos },
        );
      }
      if (crc32cHex(crc) !== checksum) {
        throw new CorruptionError(
          `snapshot state checksum mismatch: expected ${checksum}, computed ${crc32cHex(crc)}`,
          { file: path },
        );
      }
    } finally {
      await file.close();
    }
  }

  /**
   * Whether snapshot `id` reads back whole: metadata, size and checksum.
   * Streams the state without keeping it.
   *
   * @returns false when the snapshot is damaged.
   * @throws {StorageError} When there is no such snapshot or it cannot be read.
   *
   * @example
   * ```ts
   * import { FileSnapshotStore } from "./file_snapshot_store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = await FileSnapshotStore.open(dir);
   * const meta = { index: 10, term: 2, configuration: { servers: [] }, configurationIndex: 1 };
   * const info = await (await store.create(meta)).close();
   * console.log(await store.verify(info.id)); // true
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async verify(id: string): Promise<boolean> {
    try {
      const src = await this.open(id);
      for await (const _ of src.data) { /* checked while streaming */ }
      return true;
    } catch (e) {
      if (e instanceof CorruptionError) return false;
      throw e;
    }
  }

  /**
   * Remove snapshot `id` (e.g. one found damaged). Fine if it does not exist.
   *
   * @throws {StorageError} When it cannot be removed.
   *
   * @example
   * ```ts
   * import { FileSnapshotStore } from "./file_snapshot_store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = await FileSnapshotStore.open(dir);
   * const meta = { index: 10, term: 2, configuration: { servers: [] }, configurationIndex: 1 };
   * const info = await (await store.create(meta)).close();
   * await store.remove(info.id);
   * console.log(await store.list()); // []
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async remove(id: string): Promise<void> {
    if (!ID_RE.test(id)) {
      throw new RangeError(
        `expected a snapshot id like <term>-<index>-<ms>, got ${JSON.stringify(id)}`,
      );
    }
    try {
      await this.#fs.remove(`${this.#dir}/${id}`, { recursive: true });
      await this.#fs.syncDir(this.#dir);
    } catch (e) {
      throw new StorageError(`cannot remove snapshot ${id}: ${describe(e)}`, { cause: e });
    }
  }
}

interface SinkHooks {
  commit(checksum: string): Promise<void>;
  discard(): Promise<void>;
}

/** Sink of a {@linkcode FileSnapshotStore}: writes to `<id>.tmp/state.bin`. */
class FileSnapshotSink implements SnapshotSink {
  readonly id: string;
  readonly #info: SnapshotInfo;
  readonly #file: FileHandle;
  readonly #hooks: SinkHooks;
  #crc = 0;
  #size = 0;
  #state: "open" | "closing" | "done" = "open";
  #tail: Promise<void> = Promise.resolve();
  #error: unknown;

  constructor(info: SnapshotInfo, file: FileHandle, hooks: SinkHooks) {
    this.id = info.id;
    this.#info = info;
    this.#file = file;
    this.#hooks = hooks;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== "open") {
      return Promise.reject(
        new InvalidStateError(`snapshot sink ${this.id}: write after close or cancel`),
      );
    }
    // Chain writes so they land in call order even if not awaited.
    const run = this.#tail.then(async () => {
      if (this.#error !== undefined) throw this.#error;
      try {
        await this.#file.write(chunk);
      } catch (e) {
        this.#error = new StorageError(`cannot write snapshot ${this.id}: ${describe(e)}`, {
          cause: e,
        });
        throw this.#error;
      }
      this.#crc = crc32cUpdate(this.#crc, chunk);
      this.#size += chunk.length;
    });
    this.#tail = run.catch(() => {});
    return run;
  }

  async close(): Promise<SnapshotInfo> {
    if (this.#state !== "open") {
      throw new InvalidStateError(`snapshot sink ${this.id}: close after close or cancel`);
    }
    this.#state = "closing";
    await this.#tail;
    try {
      if (this.#error !== undefined) throw this.#error;
      await this.#file.sync();
      await this.#file.close();
      this.#info.size = this.#size;
      await this.#hooks.commit(crc32cHex(this.#crc));
    } catch (e) {
      this.#state = "done";
      await this.#file.close().catch(() => {});
      await this.#hooks.discard().catch(() => {});
      if (e instanceof StorageError) throw e;
      throw new StorageError(`cannot commit snapshot ${this.id}: ${describe(e)}`, { cause: e });
    }
    this.#state = "done";
    return {
      ...this.#info,
      configuration: { servers: this.#info.configuration.servers.map((s) => ({ ...s })) },
    };
  }

  async cancel(): Promise<void> {
    if (this.#state !== "open") return;
    this.#state = "done";
    await this.#tail;
    await this.#file.close().catch(() => {});
    await this.#hooks.discard();
  }
}

/**
 * A store that can check a snapshot without restoring it, like
 * {@linkcode FileSnapshotStore}.
 */
export interface VerifiableSnapshotStore extends SnapshotStore {
  /** Whether snapshot `id` reads back whole. */
  verify(id: string): Promise<boolean>;
}

/**
 * Open the newest snapshot that reads back whole, skipping damaged ones
 * (with a warning). When the store has `verify`, each candidate is checked
 * first by streaming it once (constant memory); the returned source is
 * verified again as it streams.
 *
 * @param store The snapshot store.
 * @param logger Where to warn about skipped snapshots.
 * @returns The newest good snapshot, or undefined when there is none.
 * @throws {StorageError} when the store cannot be listed or read (damage is skipped, not thrown).
 *
 * @example
 * ```ts
 * import { FileSnapshotStore, openLatestValid } from "./file_snapshot_store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await FileSnapshotStore.open(dir);
 * console.log(await openLatestValid(store)); // undefined
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openLatestValid(
  store: SnapshotStore | VerifiableSnapshotStore,
  logger: Logger = getLogger(["raftd", "storage"]),
): Promise<SnapshotSource | undefined> {
  const verify = "verify" in store && typeof store.verify === "function"
    ? (id: string) => store.verify(id)
    : undefined;
  for (const info of await store.list()) {
    try {
      if (verify !== undefined && !(await verify(info.id))) {
        logger.warn("Skipping damaged snapshot {id}", { id: info.id });
        continue;
      }
      return await store.open(info.id);
    } catch (e) {
      if (!(e instanceof CorruptionError)) throw e;
      logger.warn("Skipping damaged snapshot {id}: {error}", { id: info.id, error: e.message });
    }
  }
  return undefined;
}
