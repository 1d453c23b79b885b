/**
 * A simulated disk behind the {@linkcode FileSystem} interface, for the
 * whole-node simulation: the real file stores run on it unchanged.
 *
 * It keeps two views. What the running process sees (the page cache) changes
 * at once; what survives a crash changes only when the process makes it
 * durable:
 *
 * - file data and size: by `dataSync`/`sync` of that file. Writes not yet
 *   synced are lost on a crash, except a random part of them (in order, or in
 *   any order as writeback does), the last one possibly torn (only a prefix
 *   reached the disk, or the size grew and the data is zeros).
 * - directory entries (create, rename, unlink, mkdir): by `syncDir` of the
 *   directory. Metadata is journalled in order (as on ext4): syncing a
 *   directory makes durable every metadata change up to the last one that
 *   touched it; a crash keeps a random prefix of the rest.
 *
 * Faults: fsync failing with EIO (and, as on Linux, the writes it covered are
 * then never written, while later fsyncs succeed), writes failing with EIO,
 * ENOSPC once the disk is full (after writing what fits), and latency (slow
 * or stuck fsync). Every operation completes as an I/O event of the process's
 * {@linkcode EventLoop}, so a paused process sees nothing complete and a dead
 * one never sees its operations finish.
 *
 * @module
 */

import type {
  DirEntry,
  FileHandle,
  FileInfo,
  FileSystem,
  OpenOptions,
} from "../../src/platform/fs.ts";
import { Prng } from "./prng.ts";
import type { EventLoop } from "./scheduler.ts";

/** errno-style codes of {@linkcode SimFsError}. */
export type SimFsErrorCode =
  | "ENOENT"
  | "EEXIST"
  | "EISDIR"
  | "ENOTDIR"
  | "ENOTEMPTY"
  | "EBADF"
  | "EINVAL"
  | "EIO"
  | "ENOSPC";

/**
 * An error of the simulated file system, with an errno-style code.
 *
 * @example
 * ```ts
 * import { SimFileSystem, SimFsError } from "./sim_fs.ts";
 * const fs = new SimFileSystem();
 * try {
 *   await fs.readFile("/missing");
 * } catch (e) {
 *   console.log(e instanceof SimFsError && e.code); // ENOENT
 * }
 * ```
 */
export class SimFsError extends Error {
  /** What went wrong, as errno names it. */
  readonly code: SimFsErrorCode;
  /** The path the operation was given. */
  readonly path: string;

  /** Creates an error for `operation` on `path`. */
  constructor(code: SimFsErrorCode, operation: string, path: string, detail = "") {
    super(`${code}: ${operation} '${path}'${detail ? `: ${detail}` : ""}`);
    this.name = "SimFsError";
    this.code = code;
    this.path = path;
  }
}

/** Faults the disk injects; the simulation may change them at any time. */
export interface DiskFaults {
  /** Probability that an fsync (file or directory) fails with EIO. */
  syncError: number;
  /** Probability that a write fails with EIO, writing nothing. */
  writeError: number;
  /** Bytes the disk holds; a write beyond fails with ENOSPC after writing what fits. */
  capacity: number;
}

/** Latencies of the disk in virtual milliseconds, drawn per operation. */
export interface DiskTiming {
  /** Latency of `dataSync`, `sync` and `syncDir`. */
  sync: () => number;
  /** Latency of every other operation. */
  op: () => number;
}

/** Counters of a {@linkcode SimFileSystem}. */
export interface SimFsStats {
  /** Bytes written. */
  bytesWritten: number;
  /** Successful file and directory fsyncs. */
  syncs: number;
  /** Injected EIO failures (fsync and write). */
  ioErrors: number;
  /** Writes refused for lack of space. */
  noSpace: number;
  /** Crashes. */
  crashes: number;
  /** Unsynced writes that a crash kept in part (torn). */
  tornWrites: number;
  /** Unsynced data operations a crash dropped. */
  lostWrites: number;
}

/** Options of {@linkcode SimFileSystem}. */
export interface SimFileSystemOptions {
  /** Randomness in [0, 1) for faults and crashes. Default: a fixed sequence (seed 1). */
  random?: () => number;
  /** Initial faults (default none). */
  faults?: Partial<DiskFaults>;
  /** Initial latencies (default 0: completes in the next event). */
  timing?: Partial<DiskTiming>;
}

/** A growable byte buffer: the content of a file. */
class Bytes {
  bytes: Uint8Array;
  size: number;

  constructor(from?: Bytes) {
    this.size = from?.size ?? 0;
    this.bytes = new Uint8Array(Math.max(64, this.size));
    if (from) this.bytes.set(from.bytes.subarray(0, from.size));
  }

  #reserve(n: number): void {
    if (n <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(n, this.bytes.length * 2));
    next.set(this.bytes.subarray(0, this.size));
    this.bytes = next;
  }

  write(offset: number, data: Uint8Array): void {
    this.#reserve(offset + data.length);
    if (offset > this.size) this.bytes.fill(0, this.size, offset);
    this.bytes.set(data, offset);
    this.size = Math.max(this.size, offset + data.length);
  }

  truncate(length: number): void {
    if (length > this.size) {
      this.#reserve(length);
      this.bytes.fill(0, this.size, length);
    }
    this.size = length;
  }

  read(position: number, into: Uint8Array): number {
    if (position >= this.size) return 0;
    const n = Math.min(into.length, this.size - position);
    into.set(this.bytes.subarray(position, position + n));
    return n;
  }

  copy(): Uint8Array {
    return this.bytes.slice(0, this.size);
  }
}

type DataOp = { kind: "write"; offset: number; data: Uint8Array } | {
  kind: "truncate";
  length: number;
};

type MetaOp =
  | { kind: "link"; dir: number; name: string; inode: number }
  | { kind: "unlink"; dir: number; name: string }
  | { kind: "rename"; fromDir: number; fromName: string; toDir: number; toName: string };

interface FileInode {
  kind: "file";
  id: number;
  /** What the process sees. */
  data: Bytes;
  /** What is on the disk. */
  durable: Bytes;
  /** Data operations since the last fsync, in order. */
  pending: DataOp[];
  /** With a lying disk: how many of `pending` the next fsync makes durable. */
  lagging: number;
  /** Unlinked: its bytes no longer count against the capacity. */
  unlinked: boolean;
}

interface DirInode {
  kind: "dir";
  id: number;
  entries: Map<string, Inode>;
}

type Inode = FileInode | DirInode;

const ROOT = 0;

function split(path: string): string[] {
  return path.split("/").filter((p) => p !== "" && p !== ".");
}

function touches(op: MetaOp, dir: number): boolean {
  return op.kind === "rename" ? op.fromDir === dir || op.toDir === dir : op.dir === dir;
}

/**
 * A simulated disk: volatile and durable views, crashes, faults, latency.
 *
 * @example Unsynced writes and unsynced directory entries are lost on a crash
 * ```ts
 * import { SimFileSystem } from "./sim_fs.ts";
 * const fs = new SimFileSystem();
 * await fs.mkdirp("/d");
 * await fs.syncDir("/");
 * const f = await fs.open("/d/a", { write: true, create: true });
 * await f.write(new Uint8Array([1, 2, 3]));
 * await f.dataSync();
 * await fs.syncDir("/d");
 * await f.write(new Uint8Array([4, 5]));
 * const g = await fs.open("/d/b", { write: true, create: true });
 * await g.write(new Uint8Array([6]));
 * await g.dataSync(); // data durable, but its directory entry is not
 * fs.crash({ keepUnsynced: false });
 * console.log(await fs.readFile("/d/a")); // Uint8Array(3) [ 1, 2, 3 ]
 * console.log(await fs.exists("/d/b")); // false
 * ```
 */
export class SimFileSystem implements FileSystem {
  /** Current faults; change them at any time. */
  faults: DiskFaults;
  /** Current latencies; change them at any time. */
  timing: DiskTiming;
  /**
   * A planted bug for tests: fsync reports success at once but lags one
   * fsync behind (it makes durable only what the previous fsync covered), so
   * a crash loses the last writes a process was told are durable.
   */
  lie = false;
  /** Counters since creation. */
  readonly stats: SimFsStats = {
    bytesWritten: 0,
    syncs: 0,
    ioErrors: 0,
    noSpace: 0,
    crashes: 0,
    tornWrites: 0,
    lostWrites: 0,
  };

  readonly #random: () => number;
  #loop: EventLoop | undefined;
  #generation = 0;
  #nextId = 1;
  #root: DirInode = { kind: "dir", id: ROOT, entries: new Map() };
  #inodes = new Map<number, Inode>([[ROOT, this.#root]]);
  /** Durable directory entries: directory inode id → name → inode id. */
  #durableDirs = new Map<number, Map<string, number>>([[ROOT, new Map()]]);
  /** Metadata changes not yet durable, in order. */
  #metaOps: MetaOp[] = [];
  #used = 0;
  #diverged = false;

  /** Creates an empty disk (an empty root directory, durable). */
  constructor(options: SimFileSystemOptions = {}) {
    const fixed = new Prng(1);
    this.#random = options.random ?? (() => fixed.float());
    this.faults = { syncError: 0, writeError: 0, capacity: Infinity, ...options.faults };
    this.timing = { sync: () => 0, op: () => 0, ...options.timing };
  }

  /**
   * Complete operations on `loop` from now on: the process that owns the
   * disk (re)started. Without a loop, or without latency, operations
   * complete in a microtask.
   */
  attach(loop: EventLoop | undefined): void {
    this.#loop = loop;
  }

  /**
   * Whether a failed fsync left writes in the page cache that will never
   * reach the disk (Linux marks them clean): a restarted process would read
   * them as if they were there. Only a reboot ({@linkcode SimFileSystem.crash})
   * clears them.
   */
  get cacheDiverged(): boolean {
    return this.#diverged;
  }

  /** Bytes the files hold (what counts against the capacity). */
  get used(): number {
    return this.#used;
  }

  /**
   * The machine lost power or the process died with the kernel: every
   * handle becomes dead (its operations never complete), metadata keeps a
   * random prefix of its unsynced changes, each file keeps its synced data
   * plus, with `keepUnsynced` (default true), a random part of its unsynced
   * writes, the last kept one possibly torn. The volatile view becomes the
   * durable one.
   */
  crash(options: { keepUnsynced?: boolean } = {}): void {
    const keep = options.keepUnsynced ?? true;
    const r = this.#random;
    this.stats.crashes++;
    this.#generation++;
    this.#diverged = false;
    // Metadata: an ordered journal; some of it may have been committed.
    const k = keep ? Math.floor(r() * (this.#metaOps.length + 1)) : 0;
    for (let i = 0; i < k; i++) this.#applyMeta(this.#metaOps[i]);
    this.#metaOps = [];
    // File data: synced data stays; some unsynced writes reached the disk.
    for (const inode of this.#inodes.values()) {
      if (inode.kind !== "file" || inode.pending.length === 0) continue;
      const ops = inode.pending;
      inode.pending = [];
      inode.lagging = 0;
      if (!keep) {
        this.stats.lostWrites += ops.length;
        continue;
      }
      const inOrder = r() < 0.7;
      const cut = Math.floor(r() * (ops.length + 1));
      let lastKept = -1;
      const kept: boolean[] = ops.map((_, i) => inOrder ? i < cut : r() < 0.5);
      for (let i = 0; i < ops.length; i++) if (kept[i]) lastKept = i;
      for (let i = 0; i < ops.length; i++) {
        if (!kept[i]) {
          this.stats.lostWrites++;
          continue;
        }
        const op = ops[i];
        if (i === lastKept && op.kind === "write" && op.data.length > 1 && r() < 0.5) {
          // Torn: a prefix of the write reached the disk; sometimes the size
          // was updated but the rest of the data never was (zeros).
          this.stats.tornWrites++;
          const n = 1 + Math.floor(r() * (op.data.length - 1));
          const zeros = r() < 0.3;
          const torn = zeros ? new Uint8Array(op.data.length) : op.data.subarray(0, n);
          if (zeros) torn.set(op.data.subarray(0, n));
          inode.durable.write(op.offset, torn);
        } else {
          applyData(inode.durable, op);
        }
      }
    }
    this.#rebuildFromDurable();
  }

  // ------------------------------------------------------------ FileSystem

  /** Open (or create) a file. */
  open(path: string, options: OpenOptions): Promise<FileHandle> {
    return this.#io(this.timing.op(), () => {
      const parts = split(path);
      const write = !!(options.write || options.append || options.truncate || options.createNew);
      let inode = this.#lookup(parts);
      if (inode !== undefined && options.createNew) {
        throw new SimFsError("EEXIST", "open", path);
      }
      if (inode === undefined) {
        if (!(options.create || options.createNew)) throw new SimFsError("ENOENT", "open", path);
        const parent = this.#dirOf(parts, "open", path);
        const file: FileInode = {
          kind: "file",
          id: this.#nextId++,
          data: new Bytes(),
          durable: new Bytes(),
          pending: [],
          lagging: 0,
          unlinked: false,
        };
        this.#inodes.set(file.id, file);
        parent.entries.set(parts[parts.length - 1], file);
        this.#metaOps.push({
          kind: "link",
          dir: parent.id,
          name: parts[parts.length - 1],
          inode: file.id,
        });
        inode = file;
      }
      if (inode.kind === "dir" && write) throw new SimFsError("EISDIR", "open", path);
      if (inode.kind === "file" && options.truncate && inode.data.size > 0) {
        this.#truncate(inode, 0);
      }
      return new SimFileHandle(this, path, inode, {
        read: !!options.read,
        write,
        append: !!options.append,
      }, this.#generation);
    });
  }

  /** The whole content of a file. */
  readFile(path: string): Promise<Uint8Array> {
    return this.#io(this.timing.op(), () => {
      const inode = this.#lookup(split(path));
      if (inode === undefined) throw new SimFsError("ENOENT", "readFile", path);
      if (inode.kind === "dir") throw new SimFsError("EISDIR", "readFile", path);
      return inode.data.copy();
    });
  }

  /** Rename atomically, replacing a file (or an empty directory) at `to`. */
  rename(from: string, to: string): Promise<void> {
    return this.#io(this.timing.op(), () => {
      const fromParts = split(from);
      const toParts = split(to);
      const inode = this.#lookup(fromParts);
      if (inode === undefined) throw new SimFsError("ENOENT", "rename", from);
      const fromDir = this.#dirOf(fromParts, "rename", from);
      const toDir = this.#dirOf(toParts, "rename", to);
      const fromName = fromParts[fromParts.length - 1];
      const toName = toParts[toParts.length - 1];
      if (fromDir === toDir && fromName === toName) return;
      if (inode.kind === "dir" && this.#isWithin(toDir, inode)) {
        throw new SimFsError(
          "EINVAL",
          "rename",
          from,
          `cannot move a directory into itself (${to})`,
        );
      }
      const existing = toDir.entries.get(toName);
      if (existing !== undefined) {
        if (existing.kind === "dir" && inode.kind !== "dir") {
          throw new SimFsError("EISDIR", "rename", to);
        }
        if (existing.kind === "file" && inode.kind === "dir") {
          throw new SimFsError("ENOTDIR", "rename", to);
        }
        if (existing.kind === "dir" && existing.entries.size > 0) {
          throw new SimFsError("ENOTEMPTY", "rename", to);
        }
        this.#forget(existing);
      }
      fromDir.entries.delete(fromName);
      toDir.entries.set(toName, inode);
      this.#metaOps.push({
        kind: "rename",
        fromDir: fromDir.id,
        fromName,
        toDir: toDir.id,
        toName,
      });
    });
  }

  /** fsync a directory: its entry changes (and every metadata change before them) become durable. */
  syncDir(path: string): Promise<void> {
    return this.#io(this.timing.sync(), () => {
      const inode = this.#lookup(split(path));
      if (inode === undefined) throw new SimFsError("ENOENT", "syncDir", path);
      if (inode.kind !== "dir") throw new SimFsError("ENOTDIR", "syncDir", path);
      if (this.#random() < this.faults.syncError) {
        this.stats.ioErrors++;
        throw new SimFsError("EIO", "syncDir", path, "injected I/O error");
      }
      let last = -1;
      for (let i = 0; i < this.#metaOps.length; i++) {
        if (touches(this.#metaOps[i], inode.id)) last = i;
      }
      for (let i = 0; i <= last; i++) this.#applyMeta(this.#metaOps[i]);
      this.#metaOps.splice(0, last + 1);
      this.stats.syncs++;
    }, true);
  }

  /** Create a directory and its missing parents. */
  mkdirp(path: string): Promise<void> {
    return this.#io(this.timing.op(), () => {
      let dir = this.#root;
      for (const name of split(path)) {
        const next = dir.entries.get(name);
        if (next === undefined) {
          const created: DirInode = { kind: "dir", id: this.#nextId++, entries: new Map() };
          this.#inodes.set(created.id, created);
          dir.entries.set(name, created);
          this.#metaOps.push({ kind: "link", dir: dir.id, name, inode: created.id });
          dir = created;
        } else if (next.kind === "dir") {
          dir = next;
        } else {
          throw new SimFsError("ENOTDIR", "mkdirp", path, `${name} is a file`);
        }
      }
    });
  }

  /** The entries of a directory. */
  readDir(path: string): Promise<DirEntry[]> {
    return this.#io(this.timing.op(), () => {
      const inode = this.#lookup(split(path));
      if (inode === undefined) throw new SimFsError("ENOENT", "readDir", path);
      if (inode.kind !== "dir") throw new SimFsError("ENOTDIR", "readDir", path);
      return [...inode.entries].map(([name, e]) => ({
        name,
        isFile: e.kind === "file",
        isDirectory: e.kind === "dir",
      }));
    });
  }

  /** Remove a file or (with `recursive`) a directory tree; fine if missing. */
  remove(path: string, options?: { recursive?: boolean }): Promise<void> {
    return this.#io(this.timing.op(), () => {
      const parts = split(path);
      if (parts.length === 0) throw new SimFsError("EINVAL", "remove", path, "the root");
      const inode = this.#lookup(parts);
      if (inode === undefined) return;
      if (inode.kind === "dir" && inode.entries.size > 0 && !options?.recursive) {
        throw new SimFsError("ENOTEMPTY", "remove", path);
      }
      const parent = this.#dirOf(parts, "remove", path);
      const name = parts[parts.length - 1];
      parent.entries.delete(name);
      this.#forget(inode);
      this.#metaOps.push({ kind: "unlink", dir: parent.id, name });
    });
  }

  /** Size and kind of a path. */
  stat(path: string): Promise<FileInfo> {
    return this.#io(this.timing.op(), () => {
      const inode = this.#lookup(split(path));
      if (inode === undefined) throw new SimFsError("ENOENT", "stat", path);
      return info(inode);
    });
  }

  /** Whether a path exists. */
  exists(path: string): Promise<boolean> {
    return this.#io(this.timing.op(), () => this.#lookup(split(path)) !== undefined);
  }

  /** Whether `error` means "no such file or directory". */
  isNotFound(error: unknown): boolean {
    return error instanceof SimFsError && error.code === "ENOENT";
  }

  // ------------------------------------------------------------ handles

  /** @internal Read for a handle. */
  handleRead(h: SimFileHandle, inode: FileInode, buf: Uint8Array, position: number) {
    return this.#handleIo(h, this.timing.op(), () => inode.data.read(position, buf));
  }

  /** @internal Write for a handle at `offset` (or the end); returns the new position. */
  handleWrite(h: SimFileHandle, inode: FileInode, data: Uint8Array, offset: number | "end") {
    return this.#handleIo(h, this.timing.op(), () => {
      if (this.#random() < this.faults.writeError) {
        this.stats.ioErrors++;
        throw new SimFsError("EIO", "write", h.path, "injected I/O error");
      }
      const at = offset === "end" ? inode.data.size : offset;
      const grow = Math.max(0, at + data.length - inode.data.size);
      const room = this.faults.capacity - this.#used;
      if (!inode.unlinked && grow > room) {
        // What fits is written, then the disk is full.
        const fits = Math.max(0, data.length - (grow - Math.max(0, room)));
        if (fits > 0) this.#write(inode, at, data.subarray(0, fits));
        this.stats.noSpace++;
        throw new SimFsError(
          "ENOSPC",
          "write",
          h.path,
          `no space left on device (${fits} of ${data.length} bytes written)`,
        );
      }
      this.#write(inode, at, data);
      return at + data.length;
    });
  }

  /** @internal fsync of a file. */
  handleSync(h: SimFileHandle, inode: FileInode) {
    return this.#handleIo(h, this.timing.sync(), () => {
      if (this.lie) {
        const lagging = inode.pending.splice(0, inode.lagging);
        for (const op of lagging) applyData(inode.durable, op);
        inode.lagging = inode.pending.length;
        return;
      }
      const ops = inode.pending;
      inode.pending = [];
      if (this.#random() < this.faults.syncError) {
        // As on Linux: the failed writeback is not retried, the pages count
        // as clean; the process still reads its data, the disk never gets it.
        this.stats.ioErrors++;
        this.stats.lostWrites += ops.length;
        if (ops.length > 0) this.#diverged = true;
        throw new SimFsError("EIO", "fsync", h.path, "injected I/O error");
      }
      for (const op of ops) applyData(inode.durable, op);
      this.stats.syncs++;
    }, true);
  }

  /** @internal Truncate for a handle. */
  handleTruncate(h: SimFileHandle, inode: FileInode, length: number) {
    return this.#handleIo(h, this.timing.op(), () => {
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new SimFsError("EINVAL", "truncate", h.path, `length ${length}`);
      }
      const grow = Math.max(0, length - inode.data.size);
      if (!inode.unlinked && grow > this.faults.capacity - this.#used) {
        this.stats.noSpace++;
        throw new SimFsError("ENOSPC", "truncate", h.path);
      }
      this.#truncate(inode, length);
    });
  }

  /** @internal Stat of an open file. */
  handleStat(h: SimFileHandle, inode: Inode) {
    return this.#handleIo(h, this.timing.op(), () => info(inode));
  }

  #handleIo<T>(h: SimFileHandle, delay: number, fn: () => T, atCompletion = false): Promise<T> {
    if (h.generation !== this.#generation) return new Promise<T>(() => {});
    return this.#io(delay, fn, atCompletion);
  }

  // ------------------------------------------------------------ internals

  /**
   * Run `fn` and deliver its result (or error) as an I/O completion after
   * `delay`: at once (the page cache changes when the call is made), or,
   * with `atCompletion`, when the completion comes (an fsync is durable only
   * once it returns; a crash before that keeps what the crash keeps).
   */
  #io<T>(delay: number, fn: () => T, atCompletion = false): Promise<T> {
    const loop = this.#loop;
    const gen = this.#generation;
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    const run = () => {
      try {
        outcome = { ok: true, value: fn() };
      } catch (error) {
        outcome = { ok: false, error };
      }
    };
    if (!atCompletion) run();
    return new Promise<T>((resolve, reject) => {
      const deliver = () => {
        if (gen !== this.#generation) return; // the process died meanwhile
        if (atCompletion) run();
        if (outcome!.ok) resolve(outcome!.value);
        else reject(outcome!.error);
      };
      // No latency: it completes with the call's own turn (a page-cache hit).
      if (loop === undefined || !(delay > 0)) queueMicrotask(deliver);
      else loop.schedule(delay, deliver, "disk");
    });
  }

  #write(inode: FileInode, at: number, data: Uint8Array): void {
    const before = inode.data.size;
    inode.data.write(at, data);
    inode.pending.push({ kind: "write", offset: at, data: data.slice() });
    if (!inode.unlinked) this.#used += inode.data.size - before;
    this.stats.bytesWritten += data.length;
  }

  #truncate(inode: FileInode, length: number): void {
    const before = inode.data.size;
    inode.data.truncate(length);
    inode.pending.push({ kind: "truncate", length });
    if (!inode.unlinked) this.#used += inode.data.size - before;
  }

  #lookup(parts: string[]): Inode | undefined {
    let node: Inode = this.#root;
    for (const name of parts) {
      if (node.kind !== "dir") return undefined;
      const next: Inode | undefined = node.entries.get(name);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  #dirOf(parts: string[], operation: string, path: string): DirInode {
    if (parts.length === 0) throw new SimFsError("EINVAL", operation, path, "the root");
    const parent = this.#lookup(parts.slice(0, -1));
    if (parent === undefined) {
      throw new SimFsError("ENOENT", operation, path, "no parent directory");
    }
    if (parent.kind !== "dir") throw new SimFsError("ENOTDIR", operation, path);
    return parent;
  }

  #isWithin(dir: DirInode, ancestor: DirInode): boolean {
    if (dir === ancestor) return true;
    for (const e of ancestor.entries.values()) {
      if (e.kind === "dir" && this.#isWithin(dir, e)) return true;
    }
    return false;
  }

  /** An inode left the namespace: its bytes stop counting. */
  #forget(inode: Inode): void {
    if (inode.kind === "file") {
      if (!inode.unlinked) this.#used -= inode.data.size;
      inode.unlinked = true;
    } else {
      for (const e of inode.entries.values()) this.#forget(e);
    }
  }

  #applyMeta(op: MetaOp): void {
    const dirs = this.#durableDirs;
    const entriesOf = (id: number) => {
      let m = dirs.get(id);
      if (m === undefined) dirs.set(id, m = new Map());
      return m;
    };
    switch (op.kind) {
      case "link": {
        entriesOf(op.dir).set(op.name, op.inode);
        if (this.#inodes.get(op.inode)?.kind === "dir") entriesOf(op.inode);
        return;
      }
      case "unlink":
        entriesOf(op.dir).delete(op.name);
        return;
      case "rename": {
        const from = entriesOf(op.fromDir);
        const id = from.get(op.fromName);
        if (id === undefined) return;
        from.delete(op.fromName);
        entriesOf(op.toDir).set(op.toName, id);
        return;
      }
    }
  }

  /** After a crash: what the process sees is what the disk holds. */
  #rebuildFromDurable(): void {
    const reachable = new Map<number, Inode>([[ROOT, this.#root]]);
    this.#used = 0;
    const visit = (dir: DirInode) => {
      dir.entries = new Map();
      for (const [name, id] of this.#durableDirs.get(dir.id) ?? []) {
        const inode = this.#inodes.get(id);
        if (inode === undefined || reachable.has(id)) continue;
        reachable.set(id, inode);
        dir.entries.set(name, inode);
        if (inode.kind === "dir") {
          visit(inode);
        } else {
          inode.data = new Bytes(inode.durable);
          inode.unlinked = false;
          this.#used += inode.data.size;
        }
      }
    };
    visit(this.#root);
    this.#inodes = reachable;
    for (const id of [...this.#durableDirs.keys()]) {
      if (!reachable.has(id)) this.#durableDirs.delete(id);
    }
  }
}

function applyData(target: Bytes, op: DataOp): void {
  if (op.kind === "write") target.write(op.offset, op.data);
  else target.truncate(op.length);
}

function info(inode: Inode): FileInfo {
  return inode.kind === "file"
    ? { size: inode.data.size, isFile: true, isDirectory: false }
    : { size: 0, isFile: false, isDirectory: true };
}

/** An open file of a {@linkcode SimFileSystem}. */
class SimFileHandle implements FileHandle {
  readonly path: string;
  readonly generation: number;
  readonly #fs: SimFileSystem;
  readonly #inode: Inode;
  readonly #mode: { read: boolean; write: boolean; append: boolean };
  /** Shared by reads and writes, as with Deno's `seek` + `read`. */
  #position = 0;
  #closed = false;

  constructor(
    fs: SimFileSystem,
    path: string,
    inode: Inode,
    mode: { read: boolean; write: boolean; append: boolean },
    generation: number,
  ) {
    this.#fs = fs;
    this.path = path;
    this.#inode = inode;
    this.#mode = mode;
    this.generation = generation;
  }

  #file(operation: string, need?: "read" | "write"): FileInode {
    if (this.#closed) throw new SimFsError("EBADF", operation, this.path, "the file is closed");
    if (this.#inode.kind !== "file") throw new SimFsError("EISDIR", operation, this.path);
    if (need === "write" && !this.#mode.write) {
      throw new SimFsError("EBADF", operation, this.path, "not opened for writing");
    }
    if (need === "read" && !this.#mode.read) {
      throw new SimFsError("EBADF", operation, this.path, "not opened for reading");
    }
    return this.#inode;
  }

  async readAt(buf: Uint8Array, position: number): Promise<number> {
    const n = await this.#fs.handleRead(this, this.#file("read", "read"), buf, position);
    this.#position = position + n;
    return n;
  }

  async write(data: Uint8Array): Promise<void> {
    const inode = this.#file("write", "write");
    const at = this.#mode.append ? "end" : this.#position;
    if (!this.#mode.append) this.#position += data.length;
    this.#position = await this.#fs.handleWrite(this, inode, data, at);
  }

  dataSync(): Promise<void> {
    return this.sync();
  }

  async sync(): Promise<void> {
    await this.#fs.handleSync(this, this.#file("fsync"));
  }

  async truncate(length: number): Promise<void> {
    await this.#fs.handleTruncate(this, this.#file("truncate", "write"), length);
  }

  async stat(): Promise<FileInfo> {
    if (this.#closed) throw new SimFsError("EBADF", "stat", this.path, "the file is closed");
    return await this.#fs.handleStat(this, this.#inode);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
