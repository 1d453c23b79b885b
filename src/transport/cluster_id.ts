/**
 * Cluster ids: which cluster a server belongs to, carried in every
 * connection's handshake so that servers of two clusters never exchange a
 * message (etcd's "cluster ID mismatch"). An id is 16 random bytes, written
 * as 32 lowercase hex digits.
 *
 * @module
 */

/** Bytes of a cluster id on the wire. */
export const CLUSTER_ID_BYTES = 16;

const CLUSTER_ID_RE = /^[0-9a-f]{32}$/;

/**
 * The transport's view of which cluster this server belongs to. A server
 * that belongs to none yet (a fresh one, about to be added) adopts the id of
 * the first authenticated peer that dials it; from then on connections from
 * any other cluster are refused in the handshake, before a message is read.
 *
 * @example A fixed membership
 * ```ts
 * import type { ClusterMembership } from "./cluster_id.ts";
 * const membership: ClusterMembership = {
 *   clusterId: "0123456789abcdef0123456789abcdef",
 *   adopt: (id) => Promise.reject(new Error(`already in a cluster, not ${id}`)),
 * };
 * ```
 */
export interface ClusterMembership {
  /** This server's cluster id, or undefined while it belongs to none. */
  readonly clusterId: string | undefined;
  /**
   * Called when a server without a cluster id accepts a connection from a
   * server that has one: record it durably, then resolve. Reject to refuse
   * the connection (e.g. another cluster's id was adopted meanwhile).
   */
  adopt(clusterId: string): Promise<void>;
}

/**
 * Whether `value` is a well-formed cluster id.
 *
 * @example
 * ```ts
 * import { isClusterId } from "./cluster_id.ts";
 * console.log(isClusterId("0123456789abcdef0123456789abcdef"), isClusterId("x")); // true false
 * ```
 */
export function isClusterId(value: unknown): value is string {
  return typeof value === "string" && CLUSTER_ID_RE.test(value);
}

/**
 * A new random cluster id.
 *
 * @example
 * ```ts
 * import { isClusterId, newClusterId } from "./cluster_id.ts";
 * console.log(isClusterId(newClusterId())); // true
 * ```
 */
export function newClusterId(): string {
  return clusterIdFromBytes(crypto.getRandomValues(new Uint8Array(CLUSTER_ID_BYTES)));
}

/**
 * The 16 bytes of a cluster id. Throws a `RangeError` for a malformed id.
 *
 * @example
 * ```ts
 * import { clusterIdBytes } from "./cluster_id.ts";
 * console.log(clusterIdBytes("000102030405060708090a0b0c0d0e0f")[15]); // 15
 * ```
 */
export function clusterIdBytes(id: string): Uint8Array {
  if (!isClusterId(id)) {
    throw new RangeError(`a cluster id must be 32 lowercase hex digits, got ${JSON.stringify(id)}`);
  }
  const out = new Uint8Array(CLUSTER_ID_BYTES);
  for (let i = 0; i < CLUSTER_ID_BYTES; i++) out[i] = parseInt(id.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * The text form of 16 cluster id bytes.
 *
 * @example
 * ```ts
 * import { clusterIdFromBytes } from "./cluster_id.ts";
 * console.log(clusterIdFromBytes(new Uint8Array(16))); // "00000000000000000000000000000000"
 * ```
 */
export function clusterIdFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== CLUSTER_ID_BYTES) {
    throw new RangeError(`a cluster id has ${CLUSTER_ID_BYTES} bytes, got ${bytes.length}`);
  }
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
