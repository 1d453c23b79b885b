/**
 * The commands of the replicated key-value store as they travel through the
 * Raft log: compact MessagePack arrays `[op, ...fields]`.
 *
 * @module
 */

import { Decoder, Encoder } from "@msgpack/msgpack";

/**
 * Operation codes; the first element of every encoded command.
 *
 * @example
 * ```ts
 * import { decodeCommand, encodeSetMember, KvOp } from "./kv_command.ts";
 * console.log(decodeCommand(encodeSetMember("n1", "http://h:8001")).op === KvOp.SetMember); // true
 * ```
 */
export const KvOp = {
  /** `[0, key, value, cas]` — set a key (cas is -1 when absent). */
  Put: 0,
  /** `[1, key, cas]` — delete a key (cas is -1 when absent). */
  Delete: 1,
  /** `[2, id, http]` — record a server's HTTP address. */
  SetMember: 2,
  /** `[3, id]` — forget a server's HTTP address. */
  RemoveMember: 3,
} as const;

/**
 * One of the {@linkcode KvOp} values.
 *
 * @example
 * ```ts
 * import { KvOp } from "./kv_command.ts";
 * const op: KvOp = KvOp.Delete;
 * ```
 */
export type KvOp = typeof KvOp[keyof typeof KvOp];

/**
 * A decoded command.
 *
 * `cas` is the modify index the key must have for the command to apply
 * (0 = the key must not exist); `undefined` applies unconditionally.
 *
 * @example
 * ```ts
 * import type { KvCommand } from "./kv_command.ts";
 * const cmd: KvCommand = { op: 1, key: "a", cas: undefined };
 * ```
 */
export type KvCommand =
  | { op: typeof KvOp.Put; key: string; value: Uint8Array; cas: number | undefined }
  | { op: typeof KvOp.Delete; key: string; cas: number | undefined }
  | { op: typeof KvOp.SetMember; id: string; http: string }
  | { op: typeof KvOp.RemoveMember; id: string };

// One encoder for the process: encode() copies out of its buffer, so reuse is safe.
const encoder = new Encoder();

function casField(cas: number | undefined): number {
  if (cas === undefined) return -1;
  if (!Number.isSafeInteger(cas) || cas < 0) {
    throw new RangeError(`cas must be a non-negative integer, got ${cas}`);
  }
  return cas;
}

/**
 * Encode a put of `value` under `key`, optionally conditional on the key's
 * modify index (`cas`, 0 = must not exist).
 *
 * @example
 * ```ts
 * import { encodePut, decodeCommand } from "./kv_command.ts";
 * const bytes = encodePut("a", new TextEncoder().encode("1"));
 * console.log(decodeCommand(bytes).op); // 0
 * ```
 */
export function encodePut(key: string, value: Uint8Array, cas?: number): Uint8Array {
  return encoder.encode([KvOp.Put, key, value, casField(cas)]);
}

/**
 * Encode a delete of `key`, optionally conditional on its modify index.
 *
 * @example
 * ```ts
 * import { encodeDelete } from "./kv_command.ts";
 * const bytes = encodeDelete("a", 7);
 * console.log(bytes.length > 0); // true
 * ```
 */
export function encodeDelete(key: string, cas?: number): Uint8Array {
  return encoder.encode([KvOp.Delete, key, casField(cas)]);
}

/**
 * Encode "server `id` serves its HTTP API at `http`" (replicated so any node
 * can forward to the leader's API).
 *
 * @example
 * ```ts
 * import { encodeSetMember } from "./kv_command.ts";
 * const bytes = encodeSetMember("n1", "127.0.0.1:8001");
 * console.log(bytes.length > 0); // true
 * ```
 */
export function encodeSetMember(id: string, http: string): Uint8Array {
  return encoder.encode([KvOp.SetMember, id, http]);
}

/**
 * Encode "forget server `id`'s HTTP address".
 *
 * @example
 * ```ts
 * import { encodeRemoveMember } from "./kv_command.ts";
 * console.log(encodeRemoveMember("n3").length > 0); // true
 * ```
 */
export function encodeRemoveMember(id: string): Uint8Array {
  return encoder.encode([KvOp.RemoveMember, id]);
}

function bad(what: string): never {
  throw new TypeError(`malformed KV command: ${what}`);
}

function str(v: unknown, name: string): string {
  return typeof v === "string" ? v : bad(`${name} must be a string, got ${typeof v}`);
}

function optCas(v: unknown): number | undefined {
  if (typeof v !== "number" || !Number.isInteger(v) || v < -1) {
    bad(`cas must be an integer >= -1, got ${String(v)}`);
  }
  return v === -1 ? undefined : v;
}

const decoder = new Decoder();

/**
 * Decode a command produced by one of the `encode*` functions. A value is a
 * view into `bytes` (no copy). Throws `TypeError` on anything else.
 *
 * @example
 * ```ts
 * import { decodeCommand, encodeDelete } from "./kv_command.ts";
 * const cmd = decodeCommand(encodeDelete("k", 0));
 * if (cmd.op === 1) console.log(cmd.key, cmd.cas); // "k" 0
 * ```
 */
export function decodeCommand(bytes: Uint8Array): KvCommand {
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (e) {
    bad(`not MessagePack (${(e as Error).message})`);
  }
  if (!Array.isArray(raw) || raw.length === 0) bad("expected a non-empty array");
  switch (raw[0]) {
    case KvOp.Put: {
      const value = raw[2];
      if (!(value instanceof Uint8Array)) bad("put value must be binary");
      return { op: KvOp.Put, key: str(raw[1], "key"), value, cas: optCas(raw[3]) };
    }
    case KvOp.Delete:
      return { op: KvOp.Delete, key: str(raw[1], "key"), cas: optCas(raw[2]) };
    case KvOp.SetMember:
      return { op: KvOp.SetMember, id: str(raw[1], "id"), http: str(raw[2], "http") };
    case KvOp.RemoveMember:
      return { op: KvOp.RemoveMember, id: str(raw[1], "id") };
    default:
      return bad(`unknown op ${String(raw[0])}`);
  }
}
