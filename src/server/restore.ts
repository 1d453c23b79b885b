/**
 * `raftd snapshot restore`: build the data directory of a new one-node
 * cluster from a backup file.
 *
 * The directory gets the backup's state as its only snapshot (at the
 * backup's index and term, so new writes get higher indexes than every
 * stored key), a configuration of just this server, a hard state at that
 * term, and an identity with a new cluster id: nodes of the old cluster are
 * refused by the new one. `raftd serve` (no `--bootstrap`) then elects
 * itself and serves every key; other servers `--join` it.
 *
 * The state streams from the file into the snapshot store (member addresses
 * are replaced by this server's); nothing holds it whole. A `RESTORING`
 * marker guards the directory while it is built: `raftd serve` refuses a
 * directory that has one, and a new restore starts over.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { defaultFileSystem, type FileSystem } from "../platform/fs.ts";
import { FileSnapshotStore, FileStableStore } from "../storage/mod.ts";
import { newClusterId } from "../transport/cluster_id.ts";
import {
  BackupFormatError,
  type BackupHeader,
  KV_STATE_FORMAT,
  readBackup,
} from "./backup_file.ts";
import { fileChunks } from "./backup_io.ts";
import { LOCK_FILE, lockDataDir } from "./data_dir_lock.ts";
import { KvSnapshotEncoder, readKvSnapshotRecords } from "./kv_snapshot.ts";
import { NodeIdentity } from "./node_identity.ts";

/** Name of the marker of an unfinished restore inside a data directory. */
export const RESTORING_FILE = "RESTORING";

const log = getLogger(["raftd", "server"]);

/**
 * Options of {@linkcode restoreBackup}.
 *
 * @example
 * ```ts
 * import type { RestoreOptions } from "./restore.ts";
 * const options: RestoreOptions = {
 *   file: "backup.snap", dataDir: "./data/n1", id: "n1",
 *   raftAddress: "127.0.0.1:7001", httpUrl: "http://127.0.0.1:8001",
 * };
 * ```
 */
export interface RestoreOptions {
  /** The backup file. */
  file: string;
  /** The data directory to create (absent, or empty). */
  dataDir: string;
  /** The server id of the new cluster's one server. */
  id: string;
  /** Its Raft address, as peers will reach it. */
  raftAddress: string;
  /** Its API base URL, recorded in the member table. */
  httpUrl: string;
  /** File system (default the runtime's). */
  fs?: FileSystem;
}

/**
 * What {@linkcode restoreBackup} did.
 *
 * @example
 * ```ts
 * import type { RestoreResult } from "./restore.ts";
 * function describe(r: RestoreResult): string {
 *   return `${r.keys} keys at index ${r.header.index}, cluster ${r.clusterId}`;
 * }
 * ```
 */
export interface RestoreResult {
  /** The backup's header. */
  header: BackupHeader;
  /** The new cluster's id. */
  clusterId: string;
  /** Keys restored. */
  keys: number;
}

/**
 * A restore that cannot proceed (the directory is in use, not empty, ...).
 *
 * @example
 * ```ts
 * import { RestoreError } from "./restore.ts";
 * console.log(new RestoreError("not empty").name); // "RestoreError"
 * ```
 */
export class RestoreError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RestoreError";
  }
}

/**
 * Throws when `dir` holds the marker of an unfinished restore (for `serve`).
 *
 * @example
 * ```ts
 * import { checkNoUnfinishedRestore } from "./restore.ts";
 * const dir = await Deno.makeTempDir();
 * await checkNoUnfinishedRestore(dir);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function checkNoUnfinishedRestore(
  dir: string,
  fs: FileSystem = defaultFileSystem(),
): Promise<void> {
  if (await fs.exists(`${dir}/${RESTORING_FILE}`)) {
    throw new RestoreError(
      `a restore into ${dir} did not finish (${dir}/${RESTORING_FILE} is there); ` +
        `run raftd snapshot restore again, or remove the directory`,
    );
  }
}

/**
 * Build `dataDir` from the backup `file`; see the module docs.
 *
 * @throws {BackupFormatError} When the file is not an intact raftd backup
 *   (the directory is left marked unfinished only if it was being built).
 * @throws {RestoreError} When the directory is not empty or in use.
 *
 * @example
 * ```ts ignore
 * import { restoreBackup } from "./restore.ts";
 * const r = await restoreBackup({
 *   file: "backup.snap", dataDir: "./data/n1", id: "n1",
 *   raftAddress: "127.0.0.1:7001", httpUrl: "http://127.0.0.1:8001",
 * });
 * ```
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const fs = options.fs ?? defaultFileSystem();
  const dir = options.dataDir;
  // Read the header first: a file that is not a backup changes nothing at all.
  const backup = await readBackup(fileChunks(options.file, fs));
  if (backup.header.stateFormat !== KV_STATE_FORMAT) {
    throw new BackupFormatError(
      `the backup holds state of format ${
        JSON.stringify(backup.header.stateFormat)
      }; this raftd restores ${KV_STATE_FORMAT}`,
    );
  }
  const created = !(await fs.exists(dir));
  await fs.mkdirp(dir);
  let lock;
  try {
    lock = await lockDataDir(dir);
  } catch (e) {
    if (created) await fs.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  let building = false;
  let done = false;
  try {
    const marker = `${dir}/${RESTORING_FILE}`;
    const entries = (await fs.readDir(dir)).map((e) => e.name).filter((n) => n !== LOCK_FILE);
    if (entries.includes(RESTORING_FILE)) {
      log.info("an earlier restore into {dir} did not finish: starting over", { dir });
      for (const name of entries) await fs.remove(`${dir}/${name}`, { recursive: true });
    } else if (entries.length > 0) {
      throw new RestoreError(
        `the data directory ${dir} is not empty (it holds ${entries.sort().join(", ")}); ` +
          `restore needs a new or empty directory`,
      );
    }
    building = true;
    const markerFile = await fs.open(marker, { write: true, create: true, truncate: true });
    await markerFile.sync();
    await markerFile.close();
    await fs.syncDir(dir);

    const identity = await NodeIdentity.open(dir, fs);
    await identity.claim(options.id);
    const clusterId = newClusterId();
    await identity.startCluster(clusterId);

    const { header } = backup;
    const snapshots = await FileSnapshotStore.open(`${dir}/snapshots`, { fs });
    const sink = await snapshots.create({
      index: header.index,
      term: header.term,
      configuration: {
        servers: [{ id: options.id, address: options.raftAddress, suffrage: "voter" }],
      },
      configurationIndex: header.index,
    });
    let keys = 0;
    try {
      const encoder = new KvSnapshotEncoder(sink);
      // Members of the old cluster are dropped: their addresses mean nothing here.
      for await (const record of readKvSnapshotRecords(backup.state)) {
        if (record.type === "kv") {
          await encoder.put(record.key, record.item);
          keys++;
        }
      }
      await encoder.member(options.id, options.httpUrl);
      await encoder.finish();
      await sink.close();
    } catch (e) {
      await sink.cancel().catch(() => {});
      throw e;
    }
    const stable = await FileStableStore.open(dir, { fs });
    try {
      await stable.setState({ term: header.term, vote: "", commit: header.index });
    } finally {
      await stable.close();
    }
    await fs.remove(marker);
    await fs.syncDir(dir);
    done = true;
    return { header, clusterId, keys };
  } finally {
    // A failed restore takes back what it wrote: the directory is as it was.
    if (building && !done) {
      for (const e of await fs.readDir(dir).catch(() => [])) {
        if (e.name !== LOCK_FILE) await fs.remove(`${dir}/${e.name}`, { recursive: true });
      }
    }
    await lock.release();
    if (created && !done) await fs.remove(dir, { recursive: true }).catch(() => {});
  }
}
