/**
 * Who a data directory belongs to: `DIR/identity.json` records the server id
 * that first used it and the id of its cluster.
 *
 * ```json
 * { "version": 1, "id": "n1", "clusterId": "3f0c…(32 hex digits)" }
 * ```
 *
 * The server id is written on first start; starting the directory under
 * another `--id` is refused. The cluster id is created by `--bootstrap` (and
 * by a restore, which starts a new cluster), or adopted: from the cluster a
 * `--join` goes through, or from the first authenticated peer that dials a
 * server that has none (one added from the leader's side). It is `null`
 * until then. The file is replaced atomically (temp, fsync, rename, fsync).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { defaultFileSystem, type FileSystem } from "../platform/fs.ts";
import { writeFileAtomic } from "../storage/atomic_file.ts";
import { type ClusterMembership, isClusterId } from "../transport/cluster_id.ts";

/** Name of the identity file inside a data directory. */
export const IDENTITY_FILE = "identity.json";

const VERSION = 1;
const log = getLogger(["raftd", "server"]);

interface IdentityFile {
  version: number;
  id: string;
  clusterId: string | null;
}

/**
 * The identity recorded in a data directory does not match what was asked.
 *
 * @example
 * ```ts
 * import { IdentityError } from "./node_identity.ts";
 * console.log(new IdentityError("the data directory belongs to n1, not n2").name);
 * ```
 */
export class IdentityError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "IdentityError";
  }
}

/**
 * The identity of one data directory; also the transport's
 * {@linkcode ClusterMembership}.
 *
 * @example
 * ```ts
 * import { NodeIdentity } from "./node_identity.ts";
 * const dir = await Deno.makeTempDir();
 * const identity = await NodeIdentity.open(dir);
 * await identity.claim("n1");
 * await identity.adopt("0123456789abcdef0123456789abcdef");
 * console.log((await NodeIdentity.open(dir)).clusterId); // "0123456789abcdef0123456789abcdef"
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class NodeIdentity implements ClusterMembership {
  readonly #dir: string;
  readonly #fs: FileSystem;
  #id: string | undefined;
  #clusterId: string | undefined;
  #writing: Promise<void> = Promise.resolve();

  private constructor(dir: string, fs: FileSystem) {
    this.#dir = dir;
    this.#fs = fs;
  }

  /**
   * Read the identity of `dir` (an empty identity when it has none yet).
   *
   * @throws {IdentityError} When the file exists but is damaged.
   */
  static async open(dir: string, fs: FileSystem = defaultFileSystem()): Promise<NodeIdentity> {
    const identity = new NodeIdentity(dir, fs);
    const path = `${dir}/${IDENTITY_FILE}`;
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(path);
    } catch (e) {
      if (fs.isNotFound(e)) return identity;
      throw e;
    }
    let parsed: Partial<IdentityFile>;
    try {
      parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (e) {
      throw new IdentityError(`${path} is damaged: not valid JSON (${(e as Error).message})`);
    }
    if (
      parsed === null || typeof parsed !== "object" || parsed.version !== VERSION ||
      typeof parsed.id !== "string" || parsed.id === "" ||
      !(parsed.clusterId === null || isClusterId(parsed.clusterId))
    ) {
      throw new IdentityError(
        `${path} is damaged: expected {"version": ${VERSION}, "id": "<server id>", ` +
          `"clusterId": "<32 hex digits>" or null}, got ${
            new TextDecoder().decode(bytes.subarray(0, 200)).trim()
          }`,
      );
    }
    identity.#id = parsed.id;
    identity.#clusterId = parsed.clusterId ?? undefined;
    return identity;
  }

  /** The recorded server id, if any. */
  get id(): string | undefined {
    return this.#id;
  }

  /** The recorded cluster id, if any. */
  get clusterId(): string | undefined {
    return this.#clusterId;
  }

  /**
   * Record `id` as this directory's server id, or check it against the one
   * recorded.
   *
   * @throws {IdentityError} When the directory belongs to another server id.
   */
  async claim(id: string): Promise<void> {
    if (this.#id === id) return;
    if (this.#id !== undefined) {
      throw new IdentityError(
        `the data directory ${this.#dir} belongs to server ${JSON.stringify(this.#id)}, ` +
          `not ${JSON.stringify(id)}; start it with --id ${this.#id}, or use another --data`,
      );
    }
    this.#id = id;
    await this.#save();
  }

  /**
   * Set the cluster id of a directory that starts a new cluster (bootstrap,
   * restore), replacing any it had: the caller has checked that the directory
   * holds no Raft state, so nothing of another cluster is left in it.
   */
  async startCluster(clusterId: string): Promise<void> {
    if (!isClusterId(clusterId)) {
      throw new RangeError(`expected a cluster id of 32 hex digits, got ${clusterId}`);
    }
    await this.#set(clusterId);
  }

  /**
   * Adopt the cluster id of the cluster this server is being added to.
   * Adopting the id it already has is fine; another one is refused.
   *
   * @throws {IdentityError} When it already belongs to another cluster.
   */
  adopt(clusterId: string): Promise<void> {
    // Serialized: two connections of one leader may arrive at once.
    const run = this.#writing.then(async () => {
      if (this.#clusterId === clusterId) return;
      if (this.#clusterId !== undefined) {
        throw new IdentityError(
          `this node belongs to cluster ${this.#clusterId}, not ${clusterId}`,
        );
      }
      await this.#set(clusterId);
      log.info("joined cluster {clusterId}", { clusterId });
    });
    this.#writing = run.catch(() => {});
    return run;
  }

  async #set(clusterId: string): Promise<void> {
    const before = this.#clusterId;
    this.#clusterId = clusterId;
    try {
      await this.#save();
    } catch (e) {
      this.#clusterId = before;
      throw e;
    }
  }

  async #save(): Promise<void> {
    if (this.#id === undefined) {
      throw new IdentityError(`the data directory ${this.#dir} has no server id yet`);
    }
    const body: IdentityFile = {
      version: VERSION,
      id: this.#id,
      clusterId: this.#clusterId ?? null,
    };
    await writeFileAtomic(
      this.#fs,
      this.#dir,
      IDENTITY_FILE,
      new TextEncoder().encode(JSON.stringify(body, null, 2) + "\n"),
    );
  }
}
