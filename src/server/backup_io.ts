/**
 * Backup files on disk: read one as a stream of chunks, and write one
 * atomically (a `.part` file beside it, fsynced, renamed over the target,
 * directory fsynced), so a crash or a failed download never leaves a file
 * that looks like a backup but is not one.
 *
 * @module
 */

import { defaultFileSystem, type FileSystem } from "../platform/fs.ts";

const CHUNK_BYTES = 256 * 1024;

/** Directory part of `path` ("." when it has none). */
function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/**
 * The bytes of the file at `path`, in chunks of 256 KiB.
 *
 * @example
 * ```ts
 * import { fileChunks } from "./backup_io.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/f`, "hello");
 * let n = 0;
 * for await (const chunk of fileChunks(`${dir}/f`)) n += chunk.length;
 * console.log(n); // 5
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function* fileChunks(
  path: string,
  fs: FileSystem = defaultFileSystem(),
): AsyncGenerator<Uint8Array> {
  const file = await fs.open(path, { read: true });
  try {
    for (let pos = 0;;) {
      const buf = new Uint8Array(CHUNK_BYTES);
      const n = await file.readAt(buf, pos);
      if (n === 0) return;
      pos += n;
      yield n === buf.length ? buf : buf.subarray(0, n);
      if (n < buf.length) return;
    }
  } finally {
    await file.close();
  }
}

/**
 * Write `chunks` to `path` atomically and durably: into `path.part`, fsync,
 * rename over `path`, fsync the directory. When `chunks` throws (say, the
 * download was cut or failed its checksum) the `.part` file is removed and
 * `path` is left as it was.
 *
 * @returns The number of bytes written.
 *
 * @example
 * ```ts
 * import { writeFileAtomically } from "./backup_io.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomically(`${dir}/b`, (async function* () { yield new Uint8Array(3); })());
 * console.log((await Deno.stat(`${dir}/b`)).size); // 3
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomically(
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  fs: FileSystem = defaultFileSystem(),
): Promise<number> {
  const part = `${path}.part`;
  const file = await fs.open(part, { write: true, create: true, truncate: true });
  let written = 0;
  try {
    try {
      for await (const chunk of chunks) {
        await file.write(chunk);
        written += chunk.length;
      }
      await file.sync();
    } finally {
      await file.close();
    }
    await fs.rename(part, path);
  } catch (e) {
    await fs.remove(part).catch(() => {});
    throw e;
  }
  await fs.syncDir(dirOf(path));
  return written;
}
