/**
 * FileSystem wrappers for tests: count syncs, inject failures.
 *
 * @module
 */

import {
  defaultFileSystem,
  type FileHandle,
  type FileSystem,
  type OpenOptions,
} from "../../src/platform/fs.ts";

/** Switches a {@linkcode faultyFileSystem} reads on every call. */
export interface Faults {
  /** Fail every file write. */
  write?: boolean;
  /** Write half of the buffer, then fail. */
  partialWrite?: boolean;
  /** Fail fdatasync/fsync of files. */
  sync?: boolean;
  /** Fail directory fsync. */
  syncDir?: boolean;
  /** Fail renames. */
  rename?: boolean;
}

/** Counters kept by {@linkcode faultyFileSystem}. */
export interface FsCounters {
  syncs: number;
  writes: number;
  bytes: number;
}

/** A FileSystem that counts syncs and writes and fails on demand. */
export function faultyFileSystem(
  faults: Faults = {},
  base: FileSystem = defaultFileSystem(),
): { fs: FileSystem; counters: FsCounters } {
  const counters: FsCounters = { syncs: 0, writes: 0, bytes: 0 };
  const wrap = (h: FileHandle): FileHandle => ({
    path: h.path,
    readAt: (buf, pos) => h.readAt(buf, pos),
    async write(data) {
      if (faults.write) throw new Error("injected write failure");
      if (faults.partialWrite) {
        await h.write(data.subarray(0, data.length >> 1));
        throw new Error("injected failure after a partial write");
      }
      counters.writes++;
      counters.bytes += data.length;
      await h.write(data);
    },
    dataSync() {
      counters.syncs++;
      return faults.sync ? Promise.reject(new Error("injected fdatasync failure")) : h.dataSync();
    },
    sync() {
      counters.syncs++;
      return faults.sync ? Promise.reject(new Error("injected fsync failure")) : h.sync();
    },
    truncate: (n) => h.truncate(n),
    stat: () => h.stat(),
    close: () => h.close(),
  });
  const fs: FileSystem = {
    open: async (path: string, o: OpenOptions) => wrap(await base.open(path, o)),
    readFile: (p) => base.readFile(p),
    rename: (a, b) =>
      faults.rename ? Promise.reject(new Error("injected rename failure")) : base.rename(a, b),
    syncDir: (p) => {
      counters.syncs++;
      return faults.syncDir
        ? Promise.reject(new Error("injected dir fsync failure"))
        : base.syncDir(p);
    },
    mkdirp: (p) => base.mkdirp(p),
    readDir: (p) => base.readDir(p),
    remove: (p, o) => base.remove(p, o),
    stat: (p) => base.stat(p),
    exists: (p) => base.exists(p),
    isNotFound: (e) => base.isNotFound(e),
  };
  return { fs, counters };
}
