/**
 * `raftd recover`: operator recovery of a stopped node after the cluster
 * lost its quorum for good (hashicorp/raft's `peers.json` and
 * `RecoverCluster`).
 *
 * The node's state (newest snapshot plus every stored entry, committed or
 * not) becomes one snapshot carrying the configuration given by the
 * operator, and the log is dropped. Started again, the servers of that
 * configuration elect a leader among themselves and serve every write the
 * survivors held. The member table (server id → HTTP address) becomes the
 * one of the peers file. The cluster id is kept: it is the same cluster.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Configuration, Suffrage } from "../core/types.ts";
import type { FSM } from "../fsm.ts";
import { defaultFileSystem, type FileSystem } from "../platform/fs.ts";
import { Raft } from "../raft.ts";
import { FileLogStore, FileSnapshotStore, FileStableStore } from "../storage/mod.ts";
import { lockDataDir } from "./data_dir_lock.ts";
import { KvFsm, type KvResult } from "./kv_fsm.ts";
import { NodeIdentity } from "./node_identity.ts";
import { checkNoUnfinishedRestore } from "./restore.ts";
import { checkHostPort, checkServerId, normalizeHttpUrl } from "./validate.ts";

const log = getLogger(["raftd", "server"]);

/**
 * One server of a peers file.
 *
 * @example
 * ```ts
 * import type { RecoveryPeer } from "./recover.ts";
 * const p: RecoveryPeer = {
 *   id: "n1", raft: "10.0.0.1:7001", http: "http://10.0.0.1:8001", suffrage: "voter",
 * };
 * ```
 */
export interface RecoveryPeer {
  /** Server id. */
  id: string;
  /** Raft address. */
  raft: string;
  /** API base URL, if known. */
  http?: string;
  /** `voter` (default) or `nonvoter`. */
  suffrage: Extract<Suffrage, "voter" | "nonvoter">;
}

/**
 * A peers file or a recovery request that cannot be used.
 *
 * @example
 * ```ts
 * import { RecoveryError } from "./recover.ts";
 * console.log(new RecoveryError("no peers").name); // "RecoveryError"
 * ```
 */
export class RecoveryError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RecoveryError";
  }
}

const PEER_FIELDS = new Set(["id", "raft", "http", "suffrage"]);

/**
 * Parse and check the text of a peers file: a JSON array of
 * `{"id", "raft", "http"?, "suffrage"?}` (suffrage `voter`, the default, or
 * `nonvoter`), with at least one voter, no id or Raft address twice.
 *
 * @throws {RecoveryError} Saying what is wrong and where.
 *
 * @example
 * ```ts
 * import { parsePeers } from "./recover.ts";
 * const peers = parsePeers('[{"id":"n1","raft":"127.0.0.1:7001","http":"127.0.0.1:8001"}]');
 * console.log(peers[0].suffrage, peers[0].http); // "voter" "http://127.0.0.1:8001"
 * ```
 */
export function parsePeers(text: string): RecoveryPeer[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RecoveryError(`the peers file is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw new RecoveryError(
      'the peers file must be a non-empty JSON array of {"id", "raft", "http", "suffrage"}',
    );
  }
  const peers: RecoveryPeer[] = [];
  const ids = new Set<string>();
  const addresses = new Map<string, string>();
  for (const [i, p] of parsed.entries()) {
    const at = `peers[${i}]`;
    if (p === null || typeof p !== "object" || Array.isArray(p)) {
      throw new RecoveryError(`${at} must be an object, got ${JSON.stringify(p)}`);
    }
    const unknown = Object.keys(p).find((k) => !PEER_FIELDS.has(k));
    if (unknown !== undefined) {
      throw new RecoveryError(
        `${at} has an unknown field ${JSON.stringify(unknown)}; expected id, raft, http, suffrage`,
      );
    }
    const r = p as Record<string, unknown>;
    let id: string;
    let raft: string;
    let http: string | undefined;
    try {
      id = checkServerId(r.id, `${at}.id`);
      raft = checkHostPort(r.raft, `${at}.raft`);
      http = r.http === undefined || r.http === null
        ? undefined
        : normalizeHttpUrl(r.http, `${at}.http`);
    } catch (e) {
      throw new RecoveryError((e as Error).message);
    }
    const suffrage = r.suffrage ?? "voter";
    if (suffrage !== "voter" && suffrage !== "nonvoter") {
      throw new RecoveryError(
        `${at}.suffrage must be "voter" or "nonvoter", got ${JSON.stringify(suffrage)}`,
      );
    }
    if (ids.has(id)) throw new RecoveryError(`the peers file lists ${id} twice`);
    const holder = addresses.get(raft);
    if (holder !== undefined) {
      throw new RecoveryError(
        `the peers file gives ${holder} and ${id} the same raft address ${raft}`,
      );
    }
    ids.add(id);
    addresses.set(raft, id);
    peers.push({ id, raft, ...(http !== undefined ? { http } : {}), suffrage });
  }
  if (!peers.some((p) => p.suffrage === "voter")) {
    throw new RecoveryError("the peers file must list at least one voter");
  }
  return peers;
}

/**
 * What {@linkcode recoverDataDir} found and did.
 *
 * @example
 * ```ts
 * import type { RecoveryResult } from "./recover.ts";
 * const describe = (r: RecoveryResult) => `${r.id}: up to ${r.lastIndex}`;
 * ```
 */
export interface RecoveryResult {
  /** This server's id. */
  id: string;
  /** Its cluster id, kept. */
  clusterId: string | undefined;
  /** Last index it held (snapshot or log) before the recovery. */
  lastIndex: number;
  /** Its stored term. */
  term: number;
  /** The configuration it now holds. */
  configuration: Configuration;
}

/**
 * Rewrite the configuration of the stopped node whose data directory is
 * `dataDir` to `peers` (see the module docs).
 *
 * @throws {RecoveryError} When the directory is no raftd node's, holds no
 *   state, or is not listed in `peers`.
 * @throws {DataDirInUseError} When the node is running.
 *
 * @example
 * ```ts ignore
 * import { parsePeers, recoverDataDir } from "./recover.ts";
 * const peers = parsePeers(await Deno.readTextFile("peers.json"));
 * await recoverDataDir({ dataDir: "/var/lib/raftd", peers });
 * ```
 */
export async function recoverDataDir(options: {
  dataDir: string;
  peers: RecoveryPeer[];
  id?: string;
  fs?: FileSystem;
}): Promise<RecoveryResult> {
  const fs = options.fs ?? defaultFileSystem();
  const dir = options.dataDir;
  if (!(await fs.exists(dir))) throw new RecoveryError(`there is no data directory ${dir}`);
  const lock = await lockDataDir(dir);
  try {
    await checkNoUnfinishedRestore(dir, fs);
    const identity = await NodeIdentity.open(dir, fs);
    const id = identity.id ?? options.id;
    if (id === undefined) {
      throw new RecoveryError(
        `${dir} records no server id (no identity.json): give it with --id`,
      );
    }
    if (options.id !== undefined && options.id !== id) {
      throw new RecoveryError(
        `${dir} belongs to server ${JSON.stringify(id)}, not ${JSON.stringify(options.id)}`,
      );
    }
    if (!options.peers.some((p) => p.id === id)) {
      throw new RecoveryError(
        `the peers file does not list this server (${id}); it lists ${
          options.peers.map((p) => p.id).join(", ")
        }`,
      );
    }
    const logStore = await FileLogStore.open(`${dir}/log`, { fs });
    const stableStore = await FileStableStore.open(dir, { fs });
    const snapshotStore = await FileSnapshotStore.open(`${dir}/snapshots`, { fs });
    try {
      const stores = { logStore, stableStore, snapshotStore };
      if (!(await Raft.hasExistingState(stores))) {
        throw new RecoveryError(
          `${dir} holds no Raft state: there is nothing to recover (start a new server instead)`,
        );
      }
      const [newest] = await snapshotStore.list();
      const lastIndex = Math.max(await logStore.lastIndex(), newest?.index ?? 0);
      const term = (await stableStore.getState())?.term ?? 0;
      const configuration: Configuration = {
        servers: options.peers.map((p) => ({ id: p.id, address: p.raft, suffrage: p.suffrage })),
      };
      const kv = new KvFsm();
      const members = new Map(
        options.peers.filter((p) => p.http !== undefined).map((p) => [p.id, p.http!]),
      );
      // The state is written out once, after replaying the log: set the
      // member table the new configuration needs just before.
      const fsm: FSM<KvResult> = {
        apply: (e) => kv.apply(e),
        restore: (data) => kv.restore(data),
        snapshot: () => {
          kv.replaceMembers(members);
          return kv.snapshot();
        },
      };
      if (identity.id === undefined) await identity.claim(id);
      await Raft.recoverCluster({ id }, fsm, stores, configuration);
      log.info("recovered {dir}: {n} servers, state up to index {index}", {
        dir,
        n: configuration.servers.length,
        index: lastIndex,
      });
      return { id, clusterId: identity.clusterId, lastIndex, term, configuration };
    } finally {
      await logStore.close().catch(() => {});
      await stableStore.close().catch(() => {});
    }
  } finally {
    await lock.release();
  }
}
