/**
 * The durable {@linkcode HardState} (term, vote, commit) in one small file.
 *
 * Format of `dir/hardstate` (big-endian):
 *
 * ```
 * 0 magic "RDHS" (u32)  4 version (u16)  6 reserved (u16)
 * 8 term (u64)  16 commit (u64)  24 vote length (u32)  28 vote (UTF-8)
 * end: CRC-32C (u32) of everything before it
 * ```
 *
 * Each update is written to `hardstate.tmp`, fsynced, renamed over
 * `hardstate` and the directory fsynced: after a crash the file holds the
 * old or the new state, never a mix.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Logger } from "../logger.ts";
import type { HardState } from "../core/types.ts";
import { CorruptionError, StorageError } from "../errors.ts";
import { defaultFileSystem, type FileSystem } from "../platform/fs.ts";
import { writeFileAtomic } from "./atomic_file.ts";
import { crc32c } from "./crc32c.ts";
import type { StableStore } from "./types.ts";
import { describeValue } from "../describe_value.ts";

const FILE = "hardstate";
const MAGIC = 0x52444853; // "RDHS"
const VERSION = 1;
const FIXED_BYTES = 28;
const MAX_VOTE_BYTES = 64 * 1024;
const TWO_32 = 0x1_0000_0000;

/**
 * Options of {@linkcode FileStableStore.open}.
 *
 * @example
 * ```ts
 * import type { FileStableStoreOptions } from "./file_stable_store.ts";
 * const opts: FileStableStoreOptions = {};
 * ```
 */
export interface FileStableStoreOptions {
  /** File system to use (default the runtime's). */
  fs?: FileSystem;
  /** Where errors go (default the LogTape category `["raftd", "storage"]`). */
  logger?: Logger;
}

function encode(s: HardState): Uint8Array {
  const vote = new TextEncoder().encode(s.vote);
  const b = new Uint8Array(FIXED_BYTES + vote.length + 4);
  const v = new DataView(b.buffer);
  v.setUint32(0, MAGIC);
  v.setUint16(4, VERSION);
  v.setUint32(8, Math.floor(s.term / TWO_32));
  v.setUint32(12, s.term >>> 0);
  v.setUint32(16, Math.floor(s.commit / TWO_32));
  v.setUint32(20, s.commit >>> 0);
  v.setUint32(24, vote.length);
  b.set(vote, FIXED_BYTES);
  v.setUint32(b.length - 4, crc32c(b, 0, b.length - 4));
  return b;
}

function decode(b: Uint8Array, path: string): HardState {
  const bad = (why: string): never => {
    throw new CorruptionError(`hard state file is damaged: ${why}`, { file: path, offset: 0 });
  };
  if (b.length < FIXED_BYTES + 4) {
    bad(`expected at least ${FIXED_BYTES + 4} bytes, got ${b.length}`);
  }
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(b.length - 4) !== crc32c(b, 0, b.length - 4)) bad("checksum mismatch");
  if (v.getUint32(0) !== MAGIC) bad("bad magic (expected RDHS)");
  if (v.getUint16(4) !== VERSION) bad(`unknown version ${v.getUint16(4)} (expected ${VERSION})`);
  const voteLen = v.getUint32(24);
  if (FIXED_BYTES + voteLen + 4 !== b.length) {
    bad(`vote length ${voteLen} does not match the file size ${b.length}`);
  }
  const term = v.getUint32(8) * TWO_32 + v.getUint32(12);
  const commit = v.getUint32(16) * TWO_32 + v.getUint32(20);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(commit)) bad("term or commit too large");
  let vote: string;
  try {
    vote = new TextDecoder("utf-8", { fatal: true }).decode(
      b.subarray(FIXED_BYTES, FIXED_BYTES + voteLen),
    );
  } catch {
    return bad("vote is not valid UTF-8");
  }
  return { term, vote, commit };
}

function validate(s: HardState): void {
  if (!Number.isSafeInteger(s.term) || s.term < 0) {
    throw new RangeError(`setState: term must be an integer >= 0, got ${describeValue(s.term)}`);
  }
  if (!Number.isSafeInteger(s.commit) || s.commit < 0) {
    throw new RangeError(
      `setState: commit must be an integer >= 0, got ${describeValue(s.commit)}`,
    );
  }
  if (typeof s.vote !== "string") {
    throw new TypeError(`setState: vote must be a string, got ${describeValue(s.vote)}`);
  }
  if (
    s.vote.length * 3 > MAX_VOTE_BYTES && new TextEncoder().encode(s.vote).length > MAX_VOTE_BYTES
  ) {
    throw new RangeError(`setState: vote must be at most ${MAX_VOTE_BYTES} bytes of UTF-8`);
  }
}

function same(a: HardState | undefined, b: HardState): boolean {
  return a !== undefined && a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * A {@linkcode StableStore} in one checksummed file, replaced atomically.
 *
 * Updates that arrive while one is being written are coalesced: only the
 * newest is written next, and every caller resolves once a state at least
 * as new as theirs is durable. An update equal to the stored state costs
 * nothing.
 *
 * @example
 * ```ts
 * import { FileStableStore } from "./file_stable_store.ts";
 * const dir = await Deno.makeTempDir();
 * const s = await FileStableStore.open(dir);
 * await s.setState({ term: 3, vote: "n2", commit: 10 });
 * await s.close();
 * const again = await FileStableStore.open(dir);
 * console.log(await again.getState()); // { term: 3, vote: "n2", commit: 10 }
 * await again.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FileStableStore implements StableStore {
  readonly #dir: string;
  readonly #fs: FileSystem;
  readonly #log: Logger;
  #durable: HardState | undefined;
  #next: HardState | undefined;
  #waiters: Waiter[] = [];
  #running = false;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(dir: string, options: FileStableStoreOptions) {
    this.#dir = dir.replace(/[\\/]+$/, "") || dir;
    this.#fs = options.fs ?? defaultFileSystem();
    this.#log = options.logger ?? getLogger(["raftd", "storage"]);
  }

  /**
   * Open (or create) the store in `dir` and read the stored state.
   *
   * @param dir Directory; created when missing.
   * @param options File system and logger.
   * @returns The store.
   * @throws {CorruptionError} When the file fails its checks.
   * @throws {StorageError} When the directory or file cannot be read.
   *
   * @example
   * ```ts
   * import { FileStableStore } from "./file_stable_store.ts";
   * const dir = await Deno.makeTempDir();
   * const s = await FileStableStore.open(dir);
   * console.log(await s.getState()); // undefined
   * await s.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static async open(dir: string, options: FileStableStoreOptions = {}): Promise<FileStableStore> {
    const store = new FileStableStore(dir, options);
    const fs = store.#fs;
    const path = `${store.#dir}/${FILE}`;
    let bytes: Uint8Array | undefined;
    try {
      await fs.mkdirp(store.#dir);
      await fs.remove(`${path}.tmp`);
      // A process that died between the rename and the directory's fsync
      // leaves a state that is readable but not durable: make it durable
      // before the node acts on it (a term or vote lost to a power loss
      // later would let it vote twice).
      await fs.syncDir(store.#dir);
      bytes = await fs.readFile(path);
    } catch (e) {
      if (!fs.isNotFound(e)) {
        throw new StorageError(`cannot read the hard state in ${dir}: ${String(e)}`, { cause: e });
      }
    }
    if (bytes !== undefined) store.#durable = decode(bytes, path);
    return store;
  }

  /**
   * The last state stored durably, or undefined for a new node.
   *
   * @example
   * ```ts
   * import { FileStableStore } from "./file_stable_store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = await FileStableStore.open(dir);
   * console.log(await store.getState()); // undefined: a new node
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  getState(): Promise<HardState | undefined> {
    const s = this.#durable;
    return Promise.resolve(s && { term: s.term, vote: s.vote, commit: s.commit });
  }

  /**
   * Store `state` durably.
   *
   * @throws {RangeError} When term or commit is not a non-negative integer.
   * @throws {StorageError} When the file cannot be written.
   *
   * @example
   * ```ts
   * import { FileStableStore } from "./file_stable_store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = await FileStableStore.open(dir);
   * await store.setState({ term: 3, vote: "n1", commit: 12 }); // renamed into place and fsynced
   * console.log((await store.getState())?.vote); // "n1"
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  setState(state: HardState): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageError("the stable store is closed"));
    try {
      validate(state);
    } catch (e) {
      return Promise.reject(e);
    }
    const s = { term: state.term, vote: state.vote, commit: state.commit };
    if (!this.#running && same(this.#durable, s)) return Promise.resolve();
    this.#next = s;
    const p = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (!this.#running) {
      this.#running = true;
      this.#writing = this.#run();
    }
    return p;
  }

  async #run(): Promise<void> {
    while (this.#next !== undefined) {
      const s = this.#next;
      const waiters = this.#waiters;
      this.#next = undefined;
      this.#waiters = [];
      try {
        if (!same(this.#durable, s)) {
          await writeFileAtomic(this.#fs, this.#dir, FILE, encode(s));
          this.#durable = s;
        }
        for (const w of waiters) w.resolve();
      } catch (e) {
        const err = new StorageError(
          `cannot store the hard state in ${this.#dir}: ${e instanceof Error ? e.message : e}`,
          { cause: e },
        );
        this.#log.error("Writing the hard state in {dir} failed: {error}", {
          dir: this.#dir,
          error: err.message,
        });
        for (const w of waiters) w.reject(err);
      }
    }
    // Same synchronous turn as the check above: a later setState starts a new run.
    this.#running = false;
  }

  /**
   * Wait for a write in flight, then refuse further writes.
   *
   * @example
   * ```ts
   * import { FileStableStore } from "./file_stable_store.ts";
   * const dir = await Deno.makeTempDir();
   * const store = await FileStableStore.open(dir);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running) await this.#writing;
  }
}
