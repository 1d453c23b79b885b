/**
 * {@linkcode FileSystem} on Deno's native file APIs (`Deno.open`, `Deno.FsFile`).
 *
 * Deno has no pread, so a positioned read is `seek` + `read`; each handle
 * serialises its reads so two concurrent reads cannot move each other's
 * position.
 *
 * @module
 */

import type { DirEntry, FileHandle, FileInfo, FileSystem, OpenOptions } from "./fs.ts";
import { SYNC_WRITE_MAX_BYTES } from "./sync_write.ts";

class DenoFileHandle implements FileHandle {
  readonly path: string;
  #file: Deno.FsFile;
  // Tail of the read queue: seek+read pairs must not interleave.
  #readTail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  readAt(buf: Uint8Array, position: number): Promise<number> {
    const run = this.#readTail.then(() => this.#readAtNow(buf, position));
    this.#readTail = run.catch(() => {});
    return run;
  }

  async #readAtNow(buf: Uint8Array, position: number): Promise<number> {
    await this.#file.seek(position, Deno.SeekMode.Start);
    let done = 0;
    while (done < buf.length) {
      const n = await this.#file.read(done === 0 ? buf : buf.subarray(done));
      if (n === null) break;
      done += n;
    }
    return done;
  }

  write(data: Uint8Array): Promise<void> {
    if (data.length > SYNC_WRITE_MAX_BYTES) return this.#writeAsync(data);
    try {
      let done = 0;
      while (done < data.length) {
        done += this.#file.writeSync(done === 0 ? data : data.subarray(done));
      }
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async #writeAsync(data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      done += await this.#file.write(done === 0 ? data : data.subarray(done));
    }
  }

  dataSync(): Promise<void> {
    return this.#file.syncData();
  }

  sync(): Promise<void> {
    return this.#file.sync();
  }

  truncate(length: number): Promise<void> {
    return this.#file.truncate(length);
  }

  async stat(): Promise<FileInfo> {
    const s = await this.#file.stat();
    return { size: s.size, isFile: s.isFile, isDirectory: s.isDirectory };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    try {
      this.#file.close();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

/**
 * The Deno implementation of {@linkcode FileSystem}. Prefer
 * {@linkcode defaultFileSystem} from `fs.ts`, which picks the right one.
 *
 * @example
 * ```ts
 * import { denoFileSystem } from "./fs_deno.ts";
 * const dir = await Deno.makeTempDir();
 * const f = await denoFileSystem.open(`${dir}/a`, { write: true, create: true });
 * await f.write(new Uint8Array([1, 2, 3]));
 * await f.close();
 * console.log((await denoFileSystem.stat(`${dir}/a`)).size); // 3
 * await denoFileSystem.remove(dir, { recursive: true });
 * ```
 */
export const denoFileSystem: FileSystem = {
  async open(path: string, options: OpenOptions): Promise<FileHandle> {
    const file = await Deno.open(path, {
      read: options.read ?? false,
      write: (options.write || options.append || options.truncate || options.createNew) ?? false,
      append: options.append ?? false,
      create: options.create ?? false,
      createNew: options.createNew ?? false,
      truncate: options.truncate ?? false,
      mode: 0o600,
    });
    return new DenoFileHandle(path, file);
  },

  readFile(path: string): Promise<Uint8Array> {
    return Deno.readFile(path);
  },

  rename(from: string, to: string): Promise<void> {
    return Deno.rename(from, to);
  },

  async syncDir(path: string): Promise<void> {
    // Windows cannot open a directory as a file; NTFS journals renames anyway.
    if (Deno.build.os === "windows") return;
    const dir = await Deno.open(path, { read: true });
    try {
      await dir.sync();
    } finally {
      dir.close();
    }
  },

  async mkdirp(path: string): Promise<void> {
    await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  },

  async readDir(path: string): Promise<DirEntry[]> {
    const out: DirEntry[] = [];
    for await (const e of Deno.readDir(path)) {
      out.push({ name: e.name, isFile: e.isFile, isDirectory: e.isDirectory });
    }
    return out;
  },

  async remove(path: string, options?: { recursive?: boolean }): Promise<void> {
    try {
      await Deno.remove(path, { recursive: options?.recursive ?? false });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  },

  async stat(path: string): Promise<FileInfo> {
    const s = await Deno.stat(path);
    return { size: s.size, isFile: s.isFile, isDirectory: s.isDirectory };
  },

  async exists(path: string): Promise<boolean> {
    try {
      await Deno.lstat(path);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  },

  isNotFound(error: unknown): boolean {
    return error instanceof Deno.errors.NotFound;
  },
};
