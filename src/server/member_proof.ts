/**
 * A member's proof that it is setting its own HTTP address.
 *
 * Followers forward requests, bearer token included, to the address the
 * member table holds for the leader; so only a member, never a mere token
 * holder, may set an address. With a cluster key the request carries
 * `x-raftd-member-proof: <ms>.<mac>`, the MAC being HMAC-SHA256 under the
 * cluster key of ("raftd member address", id, address, ms), base64url; it
 * is accepted for 5 minutes around its time. Every member holds the key, so
 * the proof tells a member from a client, not one member from another.
 *
 * @module
 */

import { importClusterKey } from "../transport/handshake.ts";
import { base64url } from "./secrets.ts";

/** Header carrying the proof. */
export const MEMBER_PROOF_HEADER = "x-raftd-member-proof";

/** How far from the checker's clock a proof's time may be, in ms. */
export const MEMBER_PROOF_WINDOW_MS = 5 * 60_000;

const encoder = new TextEncoder();

async function mac(clusterKey: string, id: string, http: string, ms: number): Promise<Uint8Array> {
  const key = await importClusterKey(encoder.encode(clusterKey));
  const data = encoder.encode(["raftd member address", id, http, String(ms)].join("\n"));
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
}

/**
 * The proof header value for member `id` setting its address `http` at `nowMs`.
 *
 * @example
 * ```ts
 * import { memberProof, verifyMemberProof } from "./member_proof.ts";
 * const proof = await memberProof("key", "n2", "http://10.0.0.2:8001", Date.now());
 * console.log(await verifyMemberProof("key", "n2", "http://10.0.0.2:8001", proof, Date.now())); // true
 * ```
 */
export async function memberProof(
  clusterKey: string,
  id: string,
  http: string,
  nowMs: number,
): Promise<string> {
  const ms = Math.floor(nowMs);
  return `${ms}.${base64url(await mac(clusterKey, id, http, ms))}`;
}

/**
 * Whether `proof` (the header's value, or null) proves that a holder of the
 * cluster key set member `id`'s address to `http`, recently enough.
 *
 * @example
 * ```ts
 * import { verifyMemberProof } from "./member_proof.ts";
 * console.log(await verifyMemberProof("key", "n2", "http://x:1", null, Date.now())); // false
 * ```
 */
export async function verifyMemberProof(
  clusterKey: string,
  id: string,
  http: string,
  proof: string | null,
  nowMs: number,
): Promise<boolean> {
  const m = proof === null ? null : /^(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(proof);
  if (m === null) return false;
  const ms = Number(m[1]);
  if (Math.abs(nowMs - ms) > MEMBER_PROOF_WINDOW_MS) return false;
  const expected = base64url(await mac(clusterKey, id, http, ms));
  // Compare without an early exit.
  let diff = expected.length ^ m[2].length;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ m[2].charCodeAt(i);
  return diff === 0;
}
