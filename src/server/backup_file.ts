/**
 * The backup file of raftd (`raftd snapshot save`, `GET /v1/snapshot`): one
 * file, a header describing the snapshot, then the state machine's snapshot
 * stream as the node stored it.
 *
 * ```
 * "RAFTDBK1"          8-byte magic
 * u32 headerLength    big-endian, at most 1 MiB
 * header              UTF-8 JSON, see BackupHeader
 * u32 headerCrc       CRC-32C of the header bytes
 * state               exactly `size` bytes; CRC-32C in the header's `checksum`
 * ```
 *
 * The header comes first so a reader knows the size and checksum before the
 * state streams past; the state is read and checked chunk by chunk, never
 * held whole. A file that is cut short, has bytes after the state, or whose
 * header or state fails its checksum is refused.
 *
 * @module
 */

import type { Configuration } from "../core/types.ts";
import { CorruptionError } from "../errors.ts";
import { crc32c, crc32cHex, crc32cUpdate } from "../storage/crc32c.ts";

/** The magic at the start of every backup file. */
export const BACKUP_MAGIC: Uint8Array = new TextEncoder().encode("RAFTDBK1");
/** Version of the header format written by this code. */
export const BACKUP_FORMAT = 1;
/** The state format of raftd's key-value store (see `kv_snapshot.ts`). */
export const KV_STATE_FORMAT = "raftd-kv-1";

const MAX_HEADER_BYTES = 1 << 20;
const PREFIX_BYTES = BACKUP_MAGIC.length + 4;

/**
 * What a backup says about itself.
 *
 * @example
 * ```ts
 * import type { BackupHeader } from "./backup_file.ts";
 * const header: BackupHeader = {
 *   format: 1, stateFormat: "raftd-kv-1", index: 42, term: 3,
 *   configuration: { servers: [{ id: "n1", address: "127.0.0.1:7001", suffrage: "voter" }] },
 *   configurationIndex: 1, size: 1234, checksum: "crc32c:0a1b2c3d",
 *   clusterId: null, server: "n1", createdAt: "2025-01-01T00:00:00.000Z", version: "0.1.0",
 * };
 * ```
 */
export interface BackupHeader {
  /** Header format version ({@linkcode BACKUP_FORMAT}). */
  format: number;
  /** What the state bytes are, e.g. {@linkcode KV_STATE_FORMAT}. */
  stateFormat: string;
  /** Log index the state includes everything up to. */
  index: number;
  /** Term of the entry at `index`. */
  term: number;
  /** The cluster configuration as of the snapshot. */
  configuration: Configuration;
  /** Log index of that configuration. */
  configurationIndex: number;
  /** Bytes of state that follow the header. */
  size: number;
  /** CRC-32C of the state: `crc32c:` and 8 hex digits. */
  checksum: string;
  /** Id of the cluster it was taken from (null when that had none). */
  clusterId: string | null;
  /** Id of the server that took it. */
  server: string;
  /** When it was taken (ISO 8601, UTC). */
  createdAt: string;
  /** raftd version that took it. */
  version: string;
}

/**
 * A backup that is not a whole, intact raftd backup file (a
 * `CorruptionError`: damage found by a checksum wins over what parsing the
 * damaged bytes would say).
 *
 * @example
 * ```ts
 * import { BackupFormatError } from "./backup_file.ts";
 * console.log(new BackupFormatError("truncated").message);
 * ```
 */
export class BackupFormatError extends CorruptionError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "BackupFormatError";
  }
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The header bytes of a backup: magic, length, JSON, CRC. Write them, then
 * exactly `header.size` bytes of state.
 *
 * @example
 * ```ts
 * import { encodeBackupHeader } from "./backup_file.ts";
 * const bytes = encodeBackupHeader({
 *   format: 1, stateFormat: "raftd-kv-1", index: 1, term: 1,
 *   configuration: { servers: [] }, configurationIndex: 0, size: 0,
 *   checksum: "crc32c:00000000", clusterId: null, server: "n1",
 *   createdAt: new Date(0).toISOString(), version: "dev",
 * });
 * console.log(new TextDecoder().decode(bytes.subarray(0, 8))); // "RAFTDBK1"
 * ```
 */
export function encodeBackupHeader(header: BackupHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(PREFIX_BYTES + json.length + 4);
  const view = new DataView(out.buffer);
  out.set(BACKUP_MAGIC);
  view.setUint32(BACKUP_MAGIC.length, json.length);
  out.set(json, PREFIX_BYTES);
  view.setUint32(PREFIX_BYTES + json.length, crc32c(json));
  return out;
}

/**
 * The `checksum` field for state whose CRC-32C is `crc`.
 *
 * @example
 * ```ts
 * import { stateChecksum } from "./backup_file.ts";
 * console.log(stateChecksum(0)); // "crc32c:00000000"
 * ```
 */
export function stateChecksum(crc: number): string {
  return `crc32c:${crc32cHex(crc)}`;
}

function checkHeader(value: unknown): BackupHeader {
  const bad = (what: string): never => {
    throw new BackupFormatError(`the backup header is invalid: ${what}`);
  };
  if (value === null || typeof value !== "object" || Array.isArray(value)) bad("not an object");
  const h = value as Record<string, unknown>;
  if (h.format !== BACKUP_FORMAT) {
    bad(`format ${JSON.stringify(h.format)} is not one this raftd reads (${BACKUP_FORMAT})`);
  }
  for (const k of ["index", "term", "configurationIndex", "size"]) {
    if (!isCount(h[k])) bad(`${k} must be a non-negative integer, got ${JSON.stringify(h[k])}`);
  }
  if (typeof h.checksum !== "string" || !/^crc32c:[0-9a-f]{8}$/.test(h.checksum)) {
    bad(`checksum must be crc32c: and 8 hex digits, got ${JSON.stringify(h.checksum)}`);
  }
  for (const k of ["stateFormat", "server", "createdAt", "version"]) {
    if (typeof h[k] !== "string") bad(`${k} must be a string`);
  }
  if (!(h.clusterId === null || typeof h.clusterId === "string")) {
    bad("clusterId must be a string or null");
  }
  const servers = (h.configuration as { servers?: unknown } | null)?.servers;
  if (
    !Array.isArray(servers) ||
    !servers.every((s) =>
      s !== null && typeof s === "object" && typeof s.id === "string" &&
      typeof s.address === "string" &&
      (s.suffrage === "voter" || s.suffrage === "nonvoter" || s.suffrage === "staging")
    )
  ) {
    bad("configuration must be {servers: [{id, address, suffrage}]}");
  }
  return value as BackupHeader;
}

/**
 * A backup being read: its header, the raw header bytes (to copy the file
 * exactly), and the state, checked as it streams.
 *
 * @example
 * ```ts ignore
 * import { readBackup } from "./backup_file.ts";
 * const backup = await readBackup(chunks);
 * console.log(backup.header.index);
 * for await (const chunk of backup.state) console.log(chunk.length);
 * ```
 */
export interface OpenedBackup {
  /** The parsed, checked header. */
  header: BackupHeader;
  /** Magic, length, header JSON and its CRC, exactly as read. */
  headerBytes: Uint8Array;
  /**
   * The state bytes. Iterating it to the end checks the size and the
   * checksum, and that nothing follows; it throws {@linkcode BackupFormatError}
   * otherwise (so trust nothing restored from it until it ended).
   */
  state: AsyncIterable<Uint8Array>;
}

/**
 * Start reading a backup from a stream of chunks (a file, an HTTP body).
 * Reads the header now; the state follows lazily through `state`.
 *
 * @throws {BackupFormatError} When the stream is not a raftd backup, or its
 *   header is cut short, damaged or invalid.
 *
 * @example
 * ```ts
 * import { encodeBackupHeader, readBackup, stateChecksum } from "./backup_file.ts";
 * import { crc32c } from "../storage/crc32c.ts";
 * const state = new TextEncoder().encode("state");
 * const head = encodeBackupHeader({
 *   format: 1, stateFormat: "raftd-kv-1", index: 1, term: 1,
 *   configuration: { servers: [] }, configurationIndex: 0, size: state.length,
 *   checksum: stateChecksum(crc32c(state)), clusterId: null, server: "n1",
 *   createdAt: new Date(0).toISOString(), version: "dev",
 * });
 * const backup = await readBackup((async function* () { yield head; yield state; })());
 * let size = 0;
 * for await (const chunk of backup.state) size += chunk.length;
 * console.log(backup.header.index, size); // 1 5
 * ```
 */
export async function readBackup(source: AsyncIterable<Uint8Array>): Promise<OpenedBackup> {
  const it = source[Symbol.asyncIterator]();
  let buffered: Uint8Array = new Uint8Array(0);
  let ended = false;
  // Gather at least `n` bytes (fewer only at the end of the stream).
  const fill = async (n: number) => {
    while (buffered.length < n && !ended) {
      const next = await it.next();
      if (next.done) {
        ended = true;
        break;
      }
      const joined = new Uint8Array(buffered.length + next.value.length);
      joined.set(buffered);
      joined.set(next.value, buffered.length);
      buffered = joined;
    }
  };
  await fill(PREFIX_BYTES);
  if (
    buffered.length < BACKUP_MAGIC.length ||
    !BACKUP_MAGIC.every((b, i) => buffered[i] === b)
  ) {
    throw new BackupFormatError(
      buffered.length === 0
        ? "the file is empty, expected a raftd backup"
        : "not a raftd backup (it does not start with RAFTDBK1)",
    );
  }
  if (buffered.length < PREFIX_BYTES) throw new BackupFormatError("truncated inside the header");
  const view = new DataView(buffered.buffer, buffered.byteOffset, buffered.byteLength);
  const headerLength = view.getUint32(BACKUP_MAGIC.length);
  if (headerLength > MAX_HEADER_BYTES) {
    throw new BackupFormatError(
      `the header claims ${headerLength} bytes, more than the ${MAX_HEADER_BYTES} allowed: damaged`,
    );
  }
  const stateAt = PREFIX_BYTES + headerLength + 4;
  await fill(stateAt);
  if (buffered.length < stateAt) throw new BackupFormatError("truncated inside the header");
  const json = buffered.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength);
  const stored = new DataView(buffered.buffer, buffered.byteOffset + stateAt - 4, 4).getUint32(0);
  if (crc32c(json) !== stored) {
    throw new BackupFormatError(
      `the header is damaged: its CRC-32C is ${crc32cHex(crc32c(json))}, the file says ${
        crc32cHex(stored)
      }`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (e) {
    throw new BackupFormatError(`the header is not valid JSON: ${(e as Error).message}`);
  }
  const header = checkHeader(parsed);
  const headerBytes = buffered.slice(0, stateAt);
  const rest = buffered.subarray(stateAt);

  async function* state(): AsyncGenerator<Uint8Array> {
    let size = 0;
    let crc = 0;
    const take = function* (chunk: Uint8Array): Generator<Uint8Array> {
      if (chunk.length === 0) return;
      if (size + chunk.length > header.size) {
        throw new BackupFormatError(
          `more than the ${header.size} bytes of state the header announces: damaged`,
        );
      }
      size += chunk.length;
      crc = crc32cUpdate(crc, chunk);
      yield chunk;
    };
    yield* take(rest);
    while (!ended) {
      const next = await it.next();
      if (next.done) break;
      yield* take(next.value);
    }
    if (size < header.size) {
      throw new BackupFormatError(
        `truncated: the header announces ${header.size} bytes of state, the file has ${size}`,
      );
    }
    if (stateChecksum(crc) !== header.checksum) {
      throw new BackupFormatError(
        `the state is damaged: its checksum is ${
          stateChecksum(crc)
        }, the header says ${header.checksum}`,
      );
    }
  }
  return { header, headerBytes, state: state() };
}
