/**
 * The connection handshake of the TCP transport.
 *
 * ```
 * dialer   → Hello     "RAFTD" version purpose flags nonceC[32] clusterC[16]? u8 n id[n] u8 m address[m]
 * acceptor → Challenge "RAFTD" version flags nonceS[32] proofS[32]? clusterS[16]?
 * dialer   → Auth      proofC[32]?
 * acceptor → Ready  |  Reject reason
 * ```
 *
 * The dialer names the server it speaks for (`id`, the `from` of every
 * message it will send) and the address it advertises. With a cluster key
 * both sides prove they know it without sending it:
 * `proofS = HMAC(key, "raftd-server" hello nonceS clusterS?)` and
 * `proofC = HMAC(key, "raftd-client" hello nonceS clusterS?)`, where `hello`
 * is the whole Hello payload; fresh nonces on both sides defeat replay,
 * distinct labels defeat reflection, and the id, address and cluster ids are
 * authenticated with the rest. The acceptor then closes the connection at
 * the first message whose `from` is not that id, so one key holder cannot
 * speak for another. The key authenticates the peer at connection time;
 * against an attacker on the network path use TLS as well.
 *
 * Each side may announce its cluster id (flag 2; see `cluster_id.ts`); the
 * proofs cover both ids. Once authenticated, a connection between two
 * clusters is refused by both ends, as is a dialer that names no cluster to an
 * acceptor that has one; an acceptor that has none yet adopts the dialer's.
 *
 * @module
 */

import type { NetConn } from "../platform/net.ts";
import {
  CLUSTER_ID_BYTES,
  clusterIdBytes,
  clusterIdFromBytes,
  type ClusterMembership,
} from "./cluster_id.ts";
import { PROTOCOL_VERSION } from "./codec.ts";
import { ProtocolError } from "./errors.ts";
import { encodeFrame, FrameKind } from "./frame.ts";
import type { FrameReader } from "./frame_reader.ts";

/**
 * What a connection is for, announced by the dialer.
 *
 * @example
 * ```ts
 * import { ConnectionPurpose } from "./handshake.ts";
 * console.log(ConnectionPurpose.Snapshot); // 3
 * ```
 */
export const ConnectionPurpose = {
  /** Appends and their pipelined traffic. */
  Bulk: 1,
  /** Heartbeats, votes, responses, TimeoutNow: never behind a large append. */
  Control: 2,
  /** One InstallSnapshot with its streamed data. */
  Snapshot: 3,
} as const;

/** One of the {@linkcode ConnectionPurpose} values. */
export type ConnectionPurpose = typeof ConnectionPurpose[keyof typeof ConnectionPurpose];

/** Largest handshake frame accepted: keeps strangers from making us allocate. */
export const HANDSHAKE_MAX_FRAME_BYTES = 1024;

const MAGIC = new TextEncoder().encode("RAFTD");
const NONCE_BYTES = 32;
/** Longest server id or address in a hello, in UTF-8 bytes. */
const MAX_NAME_BYTES = 255;
const PROOF_BYTES = 32;
const FLAG_KEY = 1;
const FLAG_CLUSTER = 2;
const SERVER_LABEL = new TextEncoder().encode("raftd-server");
const CLIENT_LABEL = new TextEncoder().encode("raftd-client");
const textDecoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();

/**
 * Imports a cluster key for the handshake's HMAC-SHA256.
 *
 * @example
 * ```ts
 * import { importClusterKey } from "./handshake.ts";
 * const key = await importClusterKey(new TextEncoder().encode("a long shared secret"));
 * ```
 */
export async function importClusterKey(secret: Uint8Array): Promise<CryptoKey> {
  if (!(secret instanceof Uint8Array) || secret.length === 0) {
    throw new RangeError("clusterKey must be a non-empty Uint8Array (32 random bytes recommended)");
  }
  return await crypto.subtle.importKey(
    "raw",
    new Uint8Array(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

/** Settings shared by both sides of the handshake. */
export interface HandshakeOptions {
  /** The cluster key, or `null` when the cluster uses none. */
  key: CryptoKey | null;
  /** Which cluster this server belongs to; without it no cluster id is sent or checked. */
  cluster?: ClusterMembership;
}

/** Settings of the dialing side. */
export interface ClientHandshakeOptions extends HandshakeOptions {
  /** What the connection is for. */
  purpose: ConnectionPurpose;
  /** Our advertised address, shown in the peer's logs. */
  localAddress: string;
  /** The server id we speak for: the `from` of every message on the connection. */
  localId: string;
}

/** What the accepting side learns from a successful handshake. */
export interface AcceptedPeer {
  /** What the connection is for. */
  purpose: ConnectionPurpose;
  /** The address the dialer advertises (authenticated with a key, a claim without). */
  address: string;
  /** The server the dialer speaks for (authenticated with a key, a claim without). */
  id: string;
}

/** The two sides' cluster ids as the handshake carries them (undefined: not announced). */
interface ClusterIds {
  client: Uint8Array | undefined;
  server: Uint8Array | undefined;
}

/**
 * What the proofs sign: the whole hello (version, purpose, flags, the
 * dialer's nonce, cluster id, server id and address), the acceptor's nonce
 * and its cluster id (a presence byte keeps "no id" distinct from any id).
 */
function transcript(
  label: Uint8Array,
  hello: Uint8Array,
  serverNonce: Uint8Array,
  serverCluster: Uint8Array | undefined,
): Uint8Array<ArrayBuffer> {
  const head = label.length + hello.length + NONCE_BYTES;
  const out = new Uint8Array(head + 1 + CLUSTER_ID_BYTES);
  out.set(label);
  out.set(hello, label.length);
  out.set(serverNonce, label.length + hello.length);
  if (serverCluster !== undefined) {
    out[head] = 1;
    out.set(serverCluster, head + 1);
  }
  return out;
}

function nameBytes(text: string, what: string): Uint8Array {
  const bytes = textEncoder.encode(text);
  if (bytes.length > MAX_NAME_BYTES) {
    throw new RangeError(
      `${what} must be at most ${MAX_NAME_BYTES} bytes in UTF-8, got ${bytes.length}`,
    );
  }
  return bytes;
}

/** The dialer's server id and address at `at` of a hello, or why they are malformed. */
function parseNames(hello: Uint8Array, at: number): { id: string; address: string } | string {
  if (at + 2 > hello.length) return "too short";
  const idLength = hello[at++];
  if (idLength === 0) return "no server id";
  if (at + idLength + 1 > hello.length) return "the server id overruns the frame";
  const id = hello.subarray(at, at + idLength);
  at += idLength;
  const addressLength = hello[at++];
  if (at + addressLength !== hello.length) return "the address does not end the frame";
  try {
    return { id: strictDecoder.decode(id), address: strictDecoder.decode(hello.subarray(at)) };
  } catch {
    return "the server id or address is not UTF-8";
  }
}

function ownClusterId(cluster: ClusterMembership | undefined): Uint8Array | undefined {
  const id = cluster?.clusterId;
  return id === undefined ? undefined : clusterIdBytes(id);
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function mismatch(ours: Uint8Array, theirs: Uint8Array, who: string): string {
  return `cluster id mismatch: this node belongs to cluster ${
    clusterIdFromBytes(ours)
  }, ${who} to cluster ${clusterIdFromBytes(theirs)}`;
}

async function sign(key: CryptoKey, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
}

function verify(
  key: CryptoKey,
  proof: Uint8Array,
  data: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
  return crypto.subtle.verify("HMAC", key, new Uint8Array(proof), data);
}

function hasMagic(payload: Uint8Array): boolean {
  for (let i = 0; i < MAGIC.length; i++) if (payload[i] !== MAGIC[i]) return false;
  return true;
}

/** Reads the next frame and returns its kind (typed loosely: any byte may arrive). */
async function expectFrame(reader: FrameReader, what: string): Promise<number> {
  if (!(await reader.next())) {
    throw new ProtocolError(`connection closed during the handshake, expected ${what}`);
  }
  return reader.kind;
}

async function reject(conn: NetConn, reason: string): Promise<never> {
  try {
    await conn.write(encodeFrame(FrameKind.Reject, textEncoder.encode(reason)));
  } catch {
    // The peer may be gone already; the reason is logged on our side anyway.
  }
  throw new ProtocolError(`handshake rejected: ${reason}`);
}

function rejected(reader: FrameReader): ProtocolError {
  const reason = textDecoder.decode(reader.payload.subarray(0, 512));
  return new ProtocolError(`the peer rejected the handshake: ${reason}`);
}

/**
 * Runs the dialer's side of the handshake. Resolves when the peer accepted
 * the connection; throws {@linkcode ProtocolError} otherwise.
 *
 * @example
 * ```ts
 * import type { NetConn } from "../platform/net.ts";
 * import { FrameReader } from "./frame_reader.ts";
 * import { clientHandshake, ConnectionPurpose, HANDSHAKE_MAX_FRAME_BYTES } from "./handshake.ts";
 * async function open(conn: NetConn) {
 *   const reader = new FrameReader(conn, HANDSHAKE_MAX_FRAME_BYTES);
 *   await clientHandshake(conn, reader, {
 *     key: null, purpose: ConnectionPurpose.Control, localAddress: "127.0.0.1:7001",
 *     localId: "n1",
 *   });
 * }
 * ```
 */
export async function clientHandshake(
  conn: NetConn,
  reader: FrameReader,
  options: ClientHandshakeOptions,
): Promise<void> {
  const { key, purpose } = options;
  const clientNonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const ours = ownClusterId(options.cluster);
  const id = nameBytes(options.localId, "the server id");
  if (id.length === 0) throw new RangeError("the server id must not be empty");
  const address = nameBytes(options.localAddress, "the advertised address");
  const namesAt = MAGIC.length + 3 + NONCE_BYTES + (ours === undefined ? 0 : CLUSTER_ID_BYTES);
  const hello = new Uint8Array(namesAt + 2 + id.length + address.length);
  hello.set(MAGIC);
  hello[MAGIC.length] = PROTOCOL_VERSION;
  hello[MAGIC.length + 1] = purpose;
  hello[MAGIC.length + 2] = (key === null ? 0 : FLAG_KEY) | (ours === undefined ? 0 : FLAG_CLUSTER);
  hello.set(clientNonce, MAGIC.length + 3);
  if (ours !== undefined) hello.set(ours, MAGIC.length + 3 + NONCE_BYTES);
  hello[namesAt] = id.length;
  hello.set(id, namesAt + 1);
  hello[namesAt + 1 + id.length] = address.length;
  hello.set(address, namesAt + 2 + id.length);
  await conn.write(encodeFrame(FrameKind.Hello, hello));

  let kind = await expectFrame(reader, "a challenge");
  if (kind === FrameKind.Reject) throw rejected(reader);
  const challenge = reader.payload;
  if (kind !== FrameKind.Challenge || !hasMagic(challenge)) {
    throw new ProtocolError("the peer is not a raftd transport: expected a challenge frame");
  }
  const version = challenge[MAGIC.length];
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `the peer speaks protocol version ${version}, expected ${PROTOCOL_VERSION}`,
    );
  }
  const flags = challenge[MAGIC.length + 1];
  const withKey = (flags & FLAG_KEY) !== 0;
  const withCluster = (flags & FLAG_CLUSTER) !== 0;
  const proofAt = MAGIC.length + 2 + NONCE_BYTES;
  const clusterAt = proofAt + (withKey ? PROOF_BYTES : 0);
  const expectedLength = clusterAt + (withCluster ? CLUSTER_ID_BYTES : 0);
  if (challenge.length !== expectedLength) {
    throw new ProtocolError(
      `invalid challenge: expected ${expectedLength} bytes, got ${challenge.length}`,
    );
  }
  const serverNonce = challenge.slice(MAGIC.length + 2, proofAt);
  const clusters: ClusterIds = {
    client: ours,
    server: withCluster ? challenge.slice(clusterAt, clusterAt + CLUSTER_ID_BYTES) : undefined,
  };
  let auth: Uint8Array = new Uint8Array(0);
  if (key !== null) {
    if (!withKey) throw new ProtocolError("the peer has no cluster key but this node has one");
    const proof = challenge.subarray(proofAt, clusterAt);
    const signed = transcript(SERVER_LABEL, hello, serverNonce, clusters.server);
    if (!(await verify(key, proof, signed))) {
      throw new ProtocolError("the peer failed the cluster key check: its cluster key differs");
    }
    auth = await sign(key, transcript(CLIENT_LABEL, hello, serverNonce, clusters.server));
  } else if (withKey) {
    throw new ProtocolError("the peer requires a cluster key but this node has none");
  }
  if (ours !== undefined && clusters.server !== undefined && !sameId(ours, clusters.server)) {
    throw new ProtocolError(mismatch(ours, clusters.server, "the peer"));
  }
  await conn.write(encodeFrame(FrameKind.Auth, auth));

  kind = await expectFrame(reader, "ready");
  if (kind === FrameKind.Reject) throw rejected(reader);
  if (kind !== FrameKind.Ready || reader.payload.length !== 0) {
    throw new ProtocolError(`invalid handshake: expected a ready frame, got kind ${kind}`);
  }
}

/**
 * Runs the accepting side of the handshake. Resolves with what the dialer
 * announced; throws {@linkcode ProtocolError} (after telling the dialer why,
 * when it speaks the protocol at all) otherwise.
 *
 * @example
 * ```ts
 * import type { NetConn } from "../platform/net.ts";
 * import { FrameReader } from "./frame_reader.ts";
 * import { HANDSHAKE_MAX_FRAME_BYTES, serverHandshake } from "./handshake.ts";
 * async function accept(conn: NetConn) {
 *   const reader = new FrameReader(conn, HANDSHAKE_MAX_FRAME_BYTES);
 *   const peer = await serverHandshake(conn, reader, { key: null });
 *   console.log(peer.id, peer.purpose, peer.address);
 * }
 * ```
 */
export async function serverHandshake(
  conn: NetConn,
  reader: FrameReader,
  options: HandshakeOptions,
): Promise<AcceptedPeer> {
  const { key } = options;
  let kind = await expectFrame(reader, "a hello");
  // Kept whole: the proofs cover every byte of it.
  const hello = reader.payload.slice();
  if (
    kind !== FrameKind.Hello || hello.length < MAGIC.length + 3 + NONCE_BYTES ||
    !hasMagic(hello)
  ) {
    throw new ProtocolError("the peer is not a raftd transport: expected a hello frame");
  }
  const version = hello[MAGIC.length];
  if (version !== PROTOCOL_VERSION) {
    await reject(conn, `unsupported protocol version ${version}, expected ${PROTOCOL_VERSION}`);
  }
  const purpose = hello[MAGIC.length + 1];
  if (
    purpose !== ConnectionPurpose.Bulk && purpose !== ConnectionPurpose.Control &&
    purpose !== ConnectionPurpose.Snapshot
  ) {
    await reject(conn, `unknown connection purpose ${purpose}, expected 1, 2 or 3`);
  }
  const clientFlags = hello[MAGIC.length + 2];
  const clientHasKey = (clientFlags & FLAG_KEY) !== 0;
  const nonceAt = MAGIC.length + 3;
  const clientHasCluster = (clientFlags & FLAG_CLUSTER) !== 0;
  const namesAt = nonceAt + NONCE_BYTES + (clientHasCluster ? CLUSTER_ID_BYTES : 0);
  const names = parseNames(hello, namesAt);
  if (typeof names === "string") await reject(conn, `invalid hello: ${names}`);
  const { id, address } = names as Exclude<typeof names, string>;
  const cluster = options.cluster;
  const clusters: ClusterIds = {
    client: clientHasCluster ? hello.slice(nonceAt + NONCE_BYTES, namesAt) : undefined,
    server: ownClusterId(cluster),
  };
  if (key !== null && !clientHasKey) {
    await reject(conn, "this cluster requires a cluster key and the dialer has none");
  }
  if (key === null && clientHasKey) {
    await reject(conn, "the dialer has a cluster key but this node has none");
  }

  const serverNonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const proofAt = MAGIC.length + 2 + NONCE_BYTES;
  const clusterAt = proofAt + (key === null ? 0 : PROOF_BYTES);
  const challenge = new Uint8Array(
    clusterAt + (clusters.server === undefined ? 0 : CLUSTER_ID_BYTES),
  );
  challenge.set(MAGIC);
  challenge[MAGIC.length] = PROTOCOL_VERSION;
  challenge[MAGIC.length + 1] = (key === null ? 0 : FLAG_KEY) |
    (clusters.server === undefined ? 0 : FLAG_CLUSTER);
  challenge.set(serverNonce, MAGIC.length + 2);
  if (key !== null) {
    challenge.set(
      await sign(key, transcript(SERVER_LABEL, hello, serverNonce, clusters.server)),
      proofAt,
    );
  }
  if (clusters.server !== undefined) challenge.set(clusters.server, clusterAt);
  await conn.write(encodeFrame(FrameKind.Challenge, challenge));

  kind = await expectFrame(reader, "auth");
  if (kind !== FrameKind.Auth) {
    throw new ProtocolError(`invalid handshake: expected an auth frame, got kind ${kind}`);
  }
  if (key !== null) {
    const proof = reader.payload;
    const ok = proof.length === PROOF_BYTES &&
      await verify(
        key,
        proof,
        transcript(CLIENT_LABEL, hello, serverNonce, clusters.server),
      );
    if (!ok) await reject(conn, "cluster key mismatch");
  } else if (reader.payload.length !== 0) {
    await reject(conn, "unexpected auth proof: this node has no cluster key");
  }
  // Only an authenticated dialer gets this far: its cluster id can be trusted.
  if (cluster !== undefined) await checkCluster(conn, cluster, clusters);
  await conn.write(encodeFrame(FrameKind.Ready, new Uint8Array(0)));
  return { purpose: purpose as ConnectionPurpose, address, id };
}

/** The acceptor's cluster rule: same cluster, or adopt the dialer's when we have none. */
async function checkCluster(
  conn: NetConn,
  cluster: ClusterMembership,
  clusters: ClusterIds,
): Promise<void> {
  const { client, server } = clusters;
  if (server !== undefined) {
    if (client === undefined) {
      await reject(
        conn,
        `the dialer names no cluster; this node belongs to cluster ${clusterIdFromBytes(server)}`,
      );
    } else if (!sameId(server, client)) {
      await reject(conn, mismatch(server, client, "the dialer"));
    }
    return;
  }
  if (client === undefined) return;
  const theirs = clusterIdFromBytes(client);
  try {
    await cluster.adopt(theirs);
  } catch (e) {
    await reject(
      conn,
      `this node cannot join cluster ${theirs}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}
