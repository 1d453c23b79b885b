/**
 * The few file-system calls durable storage needs, behind one interface:
 * positioned reads, complete writes, `fdatasync`/`fsync`, truncation, atomic
 * rename and directory fsync. {@linkcode defaultFileSystem} picks the Deno
 * implementation (`Deno.open`) or the `node:fs` one (Bun) once, from
 * {@linkcode runtimeName}.
 *
 * Storage code takes a `FileSystem` as an option so tests can wrap it to
 * count fsyncs or inject failures.
 *
 * @module
 */

import { runtimeName } from "./runtime.ts";
export { SYNC_WRITE_MAX_BYTES } from "./sync_write.ts";
import { denoFileSystem } from "./fs_deno.ts";

/**
 * The `node:fs` implementation, loaded only off Deno: on Deno, loading
 * `node:fs` would start its Node.js compatibility layer for nothing.
 */
const nodeFileSystem: FileSystem | undefined = runtimeName === "deno"
  ? undefined
  : (await import("./fs_node.ts")).nodeFileSystem;

/**
 * How to open a file; the flags of `open(2)`.
 *
 * @example
 * ```ts
 * import type { OpenOptions } from "./fs.ts";
 * const appendOnly: OpenOptions = { write: true, append: true, create: true };
 * ```
 */
export interface OpenOptions {
  /** Open for reading. */
  read?: boolean;
  /** Open for writing. */
  write?: boolean;
  /** Every write goes to the end of the file (implies write). */
  append?: boolean;
  /** Create the file when it does not exist. */
  create?: boolean;
  /** Fail when the file exists (implies create). */
  createNew?: boolean;
  /** Cut the file to length 0 on open (not together with `append`). */
  truncate?: boolean;
}

/**
 * What `stat` tells.
 *
 * @example
 * ```ts
 * import type { FileInfo } from "./fs.ts";
 * const info: FileInfo = { size: 0, isFile: true, isDirectory: false };
 * ```
 */
export interface FileInfo {
  /** Size in bytes. */
  size: number;
  /** A regular file. */
  isFile: boolean;
  /** A directory. */
  isDirectory: boolean;
}

/**
 * One entry of a directory listing.
 *
 * @example
 * ```ts
 * import type { DirEntry } from "./fs.ts";
 * const e: DirEntry = { name: "00000000000000000001.seg", isFile: true, isDirectory: false };
 * ```
 */
export interface DirEntry {
  /** Name within the directory (no path). */
  name: string;
  /** A regular file. */
  isFile: boolean;
  /** A directory. */
  isDirectory: boolean;
}

/**
 * An open file.
 *
 * `readAt` is positioned (pread): concurrent reads at different positions
 * are safe. `write` writes all of `data` (looping over partial writes) at
 * the current position, or at the end for files opened with `append`.
 *
 * @example Appending durably
 * ```ts
 * import type { FileHandle } from "./fs.ts";
 * async function appendDurably(f: FileHandle, data: Uint8Array) {
 *   await f.write(data);
 *   await f.dataSync();
 * }
 * ```
 */
export interface FileHandle {
  /** The path the file was opened with. */
  readonly path: string;
  /**
   * Read into `buf` from byte `position` until `buf` is full or the file
   * ends; returns the number of bytes read (less than `buf.length` only at EOF).
   */
  readAt(buf: Uint8Array, position: number): Promise<number>;
  /**
   * Write all of `data`; resolves once every byte is handed to the OS. Small
   * writes (up to {@linkcode SYNC_WRITE_MAX_BYTES}) are made synchronously,
   * before `write` returns: see there why.
   */
  write(data: Uint8Array): Promise<void>;
  /** `fdatasync`: file data (and the size) reach the disk. */
  dataSync(): Promise<void>;
  /** `fsync`: data and all metadata reach the disk. */
  sync(): Promise<void>;
  /** Cut or extend the file to `length` bytes. */
  truncate(length: number): Promise<void>;
  /** Size and kind of the open file. */
  stat(): Promise<FileInfo>;
  /** Close the handle (a second close does nothing); other calls then fail. */
  close(): Promise<void>;
}

/**
 * The file-system operations storage uses. Paths are strings joined with
 * `/` (accepted on every supported platform).
 *
 * @example Writing a file atomically
 * ```ts
 * import { defaultFileSystem, type FileSystem } from "./fs.ts";
 * async function writeAtomic(fs: FileSystem, dir: string, name: string, data: Uint8Array) {
 *   const tmp = `${dir}/${name}.tmp`;
 *   const f = await fs.open(tmp, { write: true, create: true, truncate: true });
 *   try {
 *     await f.write(data);
 *     await f.sync();
 *   } finally {
 *     await f.close();
 *   }
 *   await fs.rename(tmp, `${dir}/${name}`);
 *   await fs.syncDir(dir);
 * }
 * const fs: FileSystem = defaultFileSystem();
 * ```
 */
export interface FileSystem {
  /** Open (or create, private to the owner: mode 0600 before the umask) a file. */
  open(path: string, options: OpenOptions): Promise<FileHandle>;
  /** The whole content of a small file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Rename atomically, replacing `to` if it exists (same file system). */
  rename(from: string, to: string): Promise<void>;
  /**
   * fsync a directory so entries created, renamed or removed in it are
   * durable. A no-op where the platform cannot (Windows).
   */
  syncDir(path: string): Promise<void>;
  /** Create a directory and its missing parents (mode 0700 before the umask); fine if it exists. */
  mkdirp(path: string): Promise<void>;
  /** The entries of a directory (unordered). */
  readDir(path: string): Promise<DirEntry[]>;
  /** Remove a file or (with `recursive`) a directory tree; fine if it is missing. */
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  /** Size and kind of a path. Throws when it does not exist. */
  stat(path: string): Promise<FileInfo>;
  /** Whether a path exists. */
  exists(path: string): Promise<boolean>;
  /** Whether `error` (thrown by this file system) means "no such file or directory". */
  isNotFound(error: unknown): boolean;
}

/**
 * The file system of the runtime we run on: `Deno.*` under Deno, `node:fs`
 * under Bun.
 *
 * @returns A shared, stateless {@linkcode FileSystem}.
 *
 * @example
 * ```ts
 * import { defaultFileSystem } from "./fs.ts";
 * const fs = defaultFileSystem();
 * console.log(await fs.exists("/definitely/not/here")); // false
 * ```
 */
export function defaultFileSystem(): FileSystem {
  return nodeFileSystem ?? denoFileSystem;
}
