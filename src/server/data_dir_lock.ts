/**
 * One process at a time per data directory: `DIR/LOCK` is held with an
 * exclusive `flock` for as long as the process uses the directory. The
 * kernel drops it when the process ends, even by `kill -9`, so a crash never
 * leaves a stale lock; the file's content (the holder's pid) only serves to
 * name the holder in the error a second process gets.
 *
 * @module
 */

import { type FileLock, tryLockFile } from "../platform/file_lock.ts";
import { pid, readTextFile } from "../platform/process.ts";

/** Name of the lock file inside a data directory. */
export const LOCK_FILE = "LOCK";

/**
 * The data directory is locked by another process.
 *
 * @example
 * ```ts
 * import { DataDirInUseError } from "./data_dir_lock.ts";
 * const e = new DataDirInUseError("/var/lib/raftd", 4242);
 * console.log(e.message);
 * ```
 */
export class DataDirInUseError extends Error {
  /** The directory. */
  readonly dir: string;
  /** Process id of the holder, when the lock file names one. */
  readonly holder: number | undefined;

  /** Creates the error. */
  constructor(dir: string, holder: number | undefined) {
    super(
      `the data directory ${dir} is in use by ${
        holder === undefined ? "another process" : `process ${holder}`
      } (it holds ${dir}/${LOCK_FILE}); stop it first, or use another --data`,
    );
    this.name = "DataDirInUseError";
    this.dir = dir;
    this.holder = holder;
  }
}

/**
 * Lock `dir` (which must exist) for this process.
 *
 * @param dir The data directory.
 * @returns The lock; release it when the directory is no longer used.
 * @throws {DataDirInUseError} When another process holds it.
 *
 * @example
 * ```ts
 * import { lockDataDir } from "./data_dir_lock.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await lockDataDir(dir);
 * await lock.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function lockDataDir(dir: string): Promise<FileLock> {
  const path = `${dir}/${LOCK_FILE}`;
  const lock = await tryLockFile(path, `${pid()}\n`);
  if (lock) return lock;
  let holder: number | undefined;
  try {
    const text = (await readTextFile(path)).trim();
    if (/^\d{1,10}$/.test(text)) holder = Number(text);
  } catch {
    // Unreadable: the error still says the directory is in use.
  }
  throw new DataDirInUseError(dir, holder);
}
