/**
 * Exclusive advisory file locks (`flock(2)`), taken without waiting.
 *
 * The kernel drops the lock when the process ends, however it ends: a lock
 * can never outlive its holder (no stale lock after `kill -9`), and a second
 * process asking for it is told at once that it is held. Deno has this
 * natively (`FsFile.tryLock`); under Bun, `node:fs` has no `flock`, so it is
 * called from the C library through `bun:ffi`.
 *
 * @module
 */

import * as fs from "node:fs";
import nodeProcess from "node:process";
import { runtimeName } from "./runtime.ts";

/**
 * A lock held on a file; {@linkcode FileLock.release} (or the end of the
 * process) lets it go.
 *
 * @example
 * ```ts
 * import { tryLockFile } from "./file_lock.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await tryLockFile(`${dir}/LOCK`, "pid 1\n");
 * console.log(lock !== undefined); // true
 * await lock?.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface FileLock {
  /** The locked file. */
  readonly path: string;
  /** Release the lock and close the file. A second call does nothing. */
  release(): Promise<void>;
}

const LOCK_EX = 2;
const LOCK_NB = 4;

type Flock = (fd: number, operation: number) => number;
let bunFlock: Flock | undefined;

/** libc's flock through bun:ffi, loaded once. */
async function loadBunFlock(): Promise<Flock> {
  if (bunFlock) return bunFlock;
  // A literal specifier, so the module graph (and JSR's publish check) can
  // see it; only Bun resolves it, and only Bun gets here.
  const ffi = await import("bun:ffi") as {
    dlopen(
      path: string,
      symbols: Record<string, { args: string[]; returns: string }>,
    ): { symbols: Record<string, (...args: number[]) => number> };
  };
  const candidates = nodeProcess.platform === "darwin"
    ? ["libc.dylib", "/usr/lib/libSystem.B.dylib"]
    : ["libc.so.6", "libc.so"];
  let lastError: unknown;
  for (const path of candidates) {
    try {
      const lib = ffi.dlopen(path, { flock: { args: ["i32", "i32"], returns: "i32" } });
      const flock = lib.symbols.flock;
      bunFlock = (fd, op) => flock(fd, op);
      return bunFlock;
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(
    `cannot load flock from the C library (tried ${candidates.join(", ")}): ${
      lastError instanceof Error ? lastError.message : String(lastError)
    }`,
  );
}

async function writeOwner(write: (bytes: Uint8Array) => Promise<void>, owner: string) {
  await write(new TextEncoder().encode(owner));
}

async function tryLockDeno(path: string, owner: string): Promise<FileLock | undefined> {
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let locked = false;
  try {
    locked = await file.tryLock(true);
    if (!locked) return undefined;
    await file.truncate(0);
    await writeOwner(async (bytes) => {
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
    }, owner);
  } finally {
    if (!locked) file.close();
  }
  let released = false;
  return {
    path,
    release() {
      if (!released) {
        released = true;
        // Closing the last descriptor drops the lock.
        file.close();
      }
      return Promise.resolve();
    },
  };
}

async function tryLockBun(path: string, owner: string): Promise<FileLock | undefined> {
  const flock = await loadBunFlock();
  const fh = await fs.promises.open(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  let locked = false;
  try {
    locked = flock(fh.fd, LOCK_EX | LOCK_NB) === 0;
    if (!locked) return undefined;
    await fh.truncate(0);
    await writeOwner(async (bytes) => {
      await fh.write(bytes, 0, bytes.length, 0);
    }, owner);
  } finally {
    if (!locked) await fh.close();
  }
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      await fh.close();
    },
  };
}

/**
 * Try to take an exclusive lock on `path` (created when missing) without
 * waiting. When it is free, the file's content becomes `owner` (say, the
 * process id, for whoever finds it held) and the lock is returned; when
 * another process (or another open of the file) holds it, resolves
 * `undefined`.
 *
 * @param path The lock file.
 * @param owner Text written into the file once locked.
 * @returns The lock, or undefined when it is held elsewhere.
 * @throws When the file cannot be opened or the platform has no flock.
 *
 * @example
 * ```ts
 * import { tryLockFile } from "./file_lock.ts";
 * const dir = await Deno.makeTempDir();
 * const first = await tryLockFile(`${dir}/LOCK`, "1\n");
 * const second = await tryLockFile(`${dir}/LOCK`, "2\n");
 * console.log(first !== undefined, second === undefined); // true true
 * await first?.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function tryLockFile(path: string, owner: string): Promise<FileLock | undefined> {
  if (runtimeName === "node") {
    // Node.js has neither flock nor an FFI to reach it; a lock that is not flock could go stale.
    return Promise.reject(
      new Error(
        "locking the data directory needs flock(2), which Node.js does not offer: " +
          "run raftd serve on Deno or Bun (the library and the admin commands run on Node.js)",
      ),
    );
  }
  return runtimeName === "bun" ? tryLockBun(path, owner) : tryLockDeno(path, owner);
}
