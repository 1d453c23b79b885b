/**
 * {@linkcode FileSystem} on `node:fs` (used under Bun). Positioned reads
 * are real `pread`s, so no serialisation is needed.
 *
 * @module
 */

import * as fs from "node:fs";
import type { DirEntry, FileHandle, FileInfo, FileSystem, OpenOptions } from "./fs.ts";
import { SYNC_WRITE_MAX_BYTES } from "./sync_write.ts";

const fsp = fs.promises;

function isWindows(): boolean {
  return (globalThis as { process?: { platform?: string } }).process?.platform === "win32";
}

function openFlags(o: OpenOptions): number {
  if (o.append && o.truncate) {
    // Deno refuses the combination; refuse it here too so both behave alike.
    throw new TypeError("open: append and truncate cannot be combined");
  }
  const c = fs.constants;
  const write = o.write || o.append || o.truncate || o.createNew;
  let flags = o.read && write ? c.O_RDWR : write ? c.O_WRONLY : c.O_RDONLY;
  if (o.append) flags |= c.O_APPEND;
  if (o.create || o.createNew) flags |= c.O_CREAT;
  if (o.createNew) flags |= c.O_EXCL;
  if (o.truncate) flags |= c.O_TRUNC;
  return flags;
}

class NodeFileHandle implements FileHandle {
  readonly path: string;
  #fh: fs.promises.FileHandle;
  #closed = false;

  constructor(path: string, fh: fs.promises.FileHandle) {
    this.path = path;
    this.#fh = fh;
  }

  async readAt(buf: Uint8Array, position: number): Promise<number> {
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await this.#fh.read(buf, done, buf.length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  write(data: Uint8Array): Promise<void> {
    if (data.length > SYNC_WRITE_MAX_BYTES) return this.#writeAsync(data);
    try {
      let done = 0;
      while (done < data.length) done += fs.writeSync(this.#fh.fd, data, done, data.length - done);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async #writeAsync(data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.#fh.write(data, done, data.length - done);
      done += bytesWritten;
    }
  }

  dataSync(): Promise<void> {
    return this.#fh.datasync();
  }

  sync(): Promise<void> {
    return this.#fh.sync();
  }

  truncate(length: number): Promise<void> {
    return this.#fh.truncate(length);
  }

  async stat(): Promise<FileInfo> {
    const s = await this.#fh.stat();
    return { size: s.size, isFile: s.isFile(), isDirectory: s.isDirectory() };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return this.#fh.close();
  }
}

function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { code?: unknown }).code === "ENOENT";
}

/**
 * The `node:fs` implementation of {@linkcode FileSystem}. Prefer
 * {@linkcode defaultFileSystem} from `fs.ts`, which picks the right one.
 *
 * @example
 * ```ts
 * import { nodeFileSystem } from "./fs_node.ts";
 * const dir = await Deno.makeTempDir();
 * const f = await nodeFileSystem.open(`${dir}/a`, { write: true, create: true });
 * await f.write(new Uint8Array([1, 2, 3]));
 * await f.close();
 * console.log((await nodeFileSystem.stat(`${dir}/a`)).size); // 3
 * await nodeFileSystem.remove(dir, { recursive: true });
 * ```
 */
export const nodeFileSystem: FileSystem = {
  async open(path: string, options: OpenOptions): Promise<FileHandle> {
    return new NodeFileHandle(path, await fsp.open(path, openFlags(options), 0o600));
  },

  async readFile(path: string): Promise<Uint8Array> {
    const b = await fsp.readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  },

  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  },

  async syncDir(path: string): Promise<void> {
    // Windows cannot open a directory as a file; NTFS journals renames anyway.
    if (isWindows()) return;
    const dir = await fsp.open(path, fs.constants.O_RDONLY);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  },

  async mkdirp(path: string): Promise<void> {
    await fsp.mkdir(path, { recursive: true, mode: 0o700 });
  },

  async readDir(path: string): Promise<DirEntry[]> {
    const entries = await fsp.readdir(path, { withFileTypes: true });
    return entries.map((e) => ({
      name: String(e.name),
      isFile: e.isFile(),
      isDirectory: e.isDirectory(),
    }));
  },

  remove(path: string, options?: { recursive?: boolean }): Promise<void> {
    return fsp.rm(path, { recursive: options?.recursive ?? false, force: true });
  },

  async stat(path: string): Promise<FileInfo> {
    const s = await fsp.stat(path);
    return { size: s.size, isFile: s.isFile(), isDirectory: s.isDirectory() };
  },

  async exists(path: string): Promise<boolean> {
    try {
      await fsp.lstat(path);
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  },

  isNotFound,
};
