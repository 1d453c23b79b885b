/**
 * Raft messages on the wire: MessagePack arrays with the message type as a
 * small integer and fields by position, entry data as MessagePack `bin`.
 *
 * ```
 * vote           [1, term, from, to, lastLogIndex, lastLogTerm, preVote, leadershipTransfer]
 * vote_resp      [2, term, from, to, granted, preVote]
 * append         [3, term, from, to, prevIndex, prevTerm, commit, [index, term, type, data, ...]]
 * append_resp    [4, term, from, to, success, index, hintIndex, hintTerm]
 * heartbeat      [5, term, from, to, commit, context]
 * heartbeat_resp [6, term, from, to, context]
 * snapshot       [7, term, from, to, index, lastTerm, configurationIndex, [id, address, suffrage, ...]]
 * timeout_now    [8, term, from, to]
 * ```
 *
 * Decoding is strict: anything but a well-formed message of a known type
 * throws {@linkcode ProtocolError}, so a peer speaking garbage never hands
 * Raft a bad object. Every field is checked, not only its type: server ids
 * are 1 to 1024 characters and `from` differs from `to`; terms are at most
 * `MAX_TERM` and indexes at most `MAX_INDEX` (see `../core/limits.ts`); a term
 * taken from the sender's log (`lastLogTerm`, `prevTerm`, entry terms,
 * `hintTerm`, a snapshot's term) is never above the message's own term;
 * entries are contiguous after `prevIndex` with terms that never decrease;
 * configuration entries and snapshot configurations are parsed and checked
 * (ids valid and unique, addresses present). Decoded entry data are views of
 * the input bytes (no copy).
 *
 * @module
 */

import { Decoder } from "@msgpack/msgpack";
import { MAX_INDEX, MAX_TERM } from "../core/limits.ts";
import { decodeConfiguration } from "../core/membership.ts";
import {
  type Entry,
  EntryType,
  type InstallSnapshotRequest,
  type Message,
  type Server,
  type Suffrage,
} from "../core/types.ts";
import { ProtocolError } from "./errors.ts";
import { MsgpackWriter } from "./msgpack_writer.ts";

/**
 * Wire protocol version spoken by this codec and the TCP transport's
 * handshake. 2: the hello names the dialer's server id, and the proofs cover
 * the whole hello.
 */
export const PROTOCOL_VERSION = 2;

/**
 * The integer that stands for each message type on the wire.
 *
 * @example
 * ```ts
 * import { MESSAGE_TYPE_CODES } from "./codec.ts";
 * console.log(MESSAGE_TYPE_CODES.append); // 3
 * ```
 */
export const MESSAGE_TYPE_CODES: Readonly<Record<Message["type"], number>> = Object.freeze({
  vote: 1,
  vote_resp: 2,
  append: 3,
  append_resp: 4,
  heartbeat: 5,
  heartbeat_resp: 6,
  snapshot: 7,
  timeout_now: 8,
});

const SUFFRAGE_CODES: Readonly<Record<Suffrage, number>> = { voter: 0, nonvoter: 1, staging: 2 };
const SUFFRAGES: readonly Suffrage[] = ["voter", "nonvoter", "staging"];

// One writer for the whole process: its buffer is reused by every message.
// After an unusually large message it is replaced so the big buffer can be freed.
const ENCODER_BUFFER_BYTES = 64 * 1024;
const ENCODER_SHRINK_AFTER_BYTES = 4 * 1024 * 1024;
let writer = new MsgpackWriter(ENCODER_BUFFER_BYTES);

// Limits keep garbage from making the decoder allocate much before it fails.
const MAX_ID_LENGTH = 1024;
const decoder = new Decoder({
  maxStrLength: MAX_ID_LENGTH * 4,
  maxMapLength: 0,
  maxExtLength: 0,
  keyDecoder: null,
});

/** Write `message` (see the module docs for the layout). */
function writeMessage(w: MsgpackWriter, message: Message): void {
  switch (message.type) {
    case "vote":
      head(w, 8, 1, message);
      w.number(message.lastLogIndex);
      w.number(message.lastLogTerm);
      w.boolean(message.preVote === true);
      w.boolean(message.leadershipTransfer === true);
      return;
    case "vote_resp":
      head(w, 6, 2, message);
      w.boolean(message.granted === true);
      w.boolean(message.preVote === true);
      return;
    case "append": {
      head(w, 8, 3, message);
      w.number(message.prevIndex);
      w.number(message.prevTerm);
      w.number(message.commit);
      const entries = message.entries;
      w.arrayHeader(entries.length * 4);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        w.number(e.index);
        w.number(e.term);
        w.number(e.type);
        w.binary(e.data);
      }
      return;
    }
    case "append_resp":
      head(w, 8, 4, message);
      w.boolean(message.success === true);
      w.number(message.index);
      w.number(message.hintIndex);
      w.number(message.hintTerm);
      return;
    case "heartbeat":
      head(w, 6, 5, message);
      w.number(message.commit);
      w.number(message.context);
      return;
    case "heartbeat_resp":
      head(w, 5, 6, message);
      w.number(message.context);
      return;
    case "snapshot": {
      head(w, 8, 7, message);
      const meta = message.meta;
      w.number(meta.index);
      w.number(meta.term);
      w.number(meta.configurationIndex);
      const servers = meta.configuration.servers;
      w.arrayHeader(servers.length * 3);
      for (const s of servers) {
        w.string(s.id);
        w.string(s.address);
        w.number(SUFFRAGE_CODES[s.suffrage]);
      }
      return;
    }
    case "timeout_now":
      head(w, 4, 8, message);
      return;
    default:
      throw new TypeError(
        `cannot encode message: expected a known message type, got ${
          describe((message as { type?: unknown }).type)
        }`,
      );
  }
}

/** The fields every message starts with: [code, term, from, to, ...`fields - 4` more]. */
function head(w: MsgpackWriter, fields: number, code: number, m: Message): void {
  w.arrayHeader(fields);
  w.number(code);
  w.number(m.term);
  w.string(m.from);
  w.string(m.to);
}

/**
 * Encodes `message` into a buffer shared with the next call: the returned
 * view is valid only until `encodeMessageShared` or {@linkcode encodeMessage}
 * is called again. The hot path copies it straight into a write batch, which
 * saves one copy per message compared with {@linkcode encodeMessage}.
 *
 * @example
 * ```ts
 * import { encodeMessageShared } from "./codec.ts";
 * const view = encodeMessageShared({ type: "timeout_now", term: 2, from: "n1", to: "n2" });
 * const mine = view.slice(); // copy before encoding anything else
 * ```
 */
export function encodeMessageShared(message: Message): Uint8Array {
  if (writer.capacity > ENCODER_SHRINK_AFTER_BYTES) {
    writer = new MsgpackWriter(ENCODER_BUFFER_BYTES);
  }
  writer.reset();
  writeMessage(writer, message);
  return writer.bytes();
}

/**
 * Encodes `message` into a new buffer. Fields are not checked here: the
 * receiver's {@linkcode decodeMessage} checks every one.
 *
 * @throws {TypeError} when `message.type` is not a known message type.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./codec.ts";
 * const bytes = encodeMessage({
 *   type: "heartbeat", term: 3, from: "n1", to: "n2", commit: 10, context: 0,
 * });
 * console.log(decodeMessage(bytes).type); // "heartbeat"
 * ```
 */
export function encodeMessage(message: Message): Uint8Array {
  return encodeMessageShared(message).slice();
}

/**
 * Decodes one message, validating every field.
 *
 * Entry data in the result are views of `bytes`: do not modify `bytes`
 * afterwards.
 *
 * @throws {ProtocolError} for anything that is not a well-formed message
 * (and nothing else, whatever the input), the message saying what was
 * expected and what was found.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./codec.ts";
 * import { EntryType } from "../core/types.ts";
 * const bytes = encodeMessage({
 *   type: "append", term: 1, from: "n1", to: "n2", prevIndex: 0, prevTerm: 0, commit: 0,
 *   entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array([7]) }],
 * });
 * const m = decodeMessage(bytes);
 * if (m.type === "append") console.log(m.entries[0].data); // Uint8Array(1) [ 7 ]
 * ```
 */
export function decodeMessage(bytes: Uint8Array): Message {
  checkShape(bytes);
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (e) {
    throw new ProtocolError(`invalid MessagePack in message: ${errorText(e)}`, { cause: e });
  }
  return fromWire(raw);
}

function fromWire(raw: unknown): Message {
  if (!Array.isArray(raw) || raw.length < 4) {
    throw new ProtocolError(
      `invalid message: expected an array of at least 4 fields, got ${describe(raw)}`,
    );
  }
  const code = raw[0];
  switch (code) {
    case 1: {
      arity(raw, 8, "vote");
      const term = termOf(raw[1], "vote.term");
      return {
        type: "vote",
        term,
        ...ends(raw, "vote"),
        lastLogIndex: index(raw[4], "vote.lastLogIndex"),
        lastLogTerm: termAtMost(raw[5], term, "vote.lastLogTerm"),
        preVote: bool(raw[6], "vote.preVote"),
        leadershipTransfer: bool(raw[7], "vote.leadershipTransfer"),
      };
    }
    case 2:
      arity(raw, 6, "vote_resp");
      return {
        type: "vote_resp",
        term: termOf(raw[1], "vote_resp.term"),
        ...ends(raw, "vote_resp"),
        granted: bool(raw[4], "vote_resp.granted"),
        preVote: bool(raw[5], "vote_resp.preVote"),
      };
    case 3: {
      arity(raw, 8, "append");
      const term = termOf(raw[1], "append.term");
      const prevIndex = index(raw[4], "append.prevIndex");
      const prevTerm = termAtMost(raw[5], term, "append.prevTerm");
      return {
        type: "append",
        term,
        ...ends(raw, "append"),
        prevIndex,
        prevTerm,
        commit: index(raw[6], "append.commit"),
        entries: entriesFromWire(raw[7], prevIndex, prevTerm, term),
      };
    }
    case 4: {
      arity(raw, 8, "append_resp");
      const term = termOf(raw[1], "append_resp.term");
      return {
        type: "append_resp",
        term,
        ...ends(raw, "append_resp"),
        success: bool(raw[4], "append_resp.success"),
        index: index(raw[5], "append_resp.index"),
        hintIndex: index(raw[6], "append_resp.hintIndex"),
        hintTerm: termAtMost(raw[7], term, "append_resp.hintTerm"),
      };
    }
    case 5:
      arity(raw, 6, "heartbeat");
      return {
        type: "heartbeat",
        term: termOf(raw[1], "heartbeat.term"),
        ...ends(raw, "heartbeat"),
        commit: index(raw[4], "heartbeat.commit"),
        context: uint(raw[5], "heartbeat.context"),
      };
    case 6:
      arity(raw, 5, "heartbeat_resp");
      return {
        type: "heartbeat_resp",
        term: termOf(raw[1], "heartbeat_resp.term"),
        ...ends(raw, "heartbeat_resp"),
        context: uint(raw[4], "heartbeat_resp.context"),
      };
    case 7:
      arity(raw, 8, "snapshot");
      return snapshotFromWire(raw);
    case 8:
      arity(raw, 4, "timeout_now");
      return {
        type: "timeout_now",
        term: termOf(raw[1], "timeout_now.term"),
        ...ends(raw, "timeout_now"),
      };
    default:
      throw new ProtocolError(
        `invalid message: expected a message type code in 1..8, got ${describe(code)}`,
      );
  }
}

/** `from` and `to` of a message: two different server ids. */
function ends(raw: unknown[], type: string): { from: string; to: string } {
  const from = serverId(raw[2], `${type}.from`);
  const to = serverId(raw[3], `${type}.to`);
  if (from === to) {
    throw new ProtocolError(
      `invalid ${type}: expected from and to to name different servers, got ${
        describe(from)
      } twice`,
    );
  }
  return { from, to };
}

function entriesFromWire(
  raw: unknown,
  prevIndex: number,
  prevTerm: number,
  messageTerm: number,
): Entry[] {
  if (!Array.isArray(raw) || raw.length % 4 !== 0) {
    throw new ProtocolError(
      `invalid append.entries: expected an array of 4 fields per entry, got ${describe(raw)}`,
    );
  }
  const n = raw.length / 4;
  if (prevIndex + n > MAX_INDEX) {
    throw new ProtocolError(
      `invalid append.entries: expected indexes up to ${MAX_INDEX}, got ${n} entries after ${prevIndex}`,
    );
  }
  const entries = new Array<Entry>(n);
  // Terms never decrease along a log and never exceed the sender's term.
  let lastTerm = prevTerm;
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    const index = uint(raw[j], "append.entries[].index");
    if (index !== prevIndex + 1 + i) {
      throw new ProtocolError(
        `invalid append.entries[${i}].index: expected ${prevIndex + 1 + i} (prevIndex + ${
          1 + i
        }), got ${index}`,
      );
    }
    const term = uint(raw[j + 1], "append.entries[].term");
    if (term < lastTerm || term > messageTerm) {
      throw new ProtocolError(
        `invalid append.entries[${i}].term: expected a term in [${lastTerm}, ${messageTerm}] (not below the entry before it, not above the message's term), got ${term}`,
      );
    }
    lastTerm = term;
    const type = raw[j + 2];
    if (type !== 0 && type !== 1 && type !== 2 && type !== 3) {
      throw new ProtocolError(
        `invalid append.entries[${i}].type: expected 0, 1, 2 or 3, got ${describe(type)}`,
      );
    }
    const data = raw[j + 3];
    if (!(data instanceof Uint8Array)) {
      throw new ProtocolError(
        `invalid append.entries[${i}].data: expected binary, got ${describe(data)}`,
      );
    }
    if (type === EntryType.Configuration) {
      // The core acts on a configuration as soon as it is appended: a broken
      // one must end this connection here, not stop the node there.
      try {
        checkServers(decodeConfiguration(data).servers, `append.entries[${i}]`);
      } catch (e) {
        if (e instanceof ProtocolError) throw e;
        throw new ProtocolError(
          `invalid append.entries[${i}]: expected a configuration, got one that ${errorText(e)}`,
        );
      }
    }
    entries[i] = { index, term, type: type as EntryType, data };
  }
  return entries;
}

function snapshotFromWire(raw: unknown[]): InstallSnapshotRequest {
  const term = termOf(raw[1], "snapshot.term");
  const { from, to } = ends(raw, "snapshot");
  const index = uintAtMost(raw[4], MAX_INDEX, "snapshot.meta.index");
  const lastTerm = termAtMost(raw[5], term, "snapshot.meta.term");
  const configurationIndex = uintAtMost(raw[6], index, "snapshot.meta.configurationIndex");
  const flat = raw[7];
  if (!Array.isArray(flat) || flat.length % 3 !== 0) {
    throw new ProtocolError(
      `invalid snapshot.meta.configuration: expected an array of 3 fields per server, got ${
        describe(flat)
      }`,
    );
  }
  const servers = new Array<Server>(flat.length / 3);
  for (let i = 0, j = 0; j < flat.length; i++, j += 3) {
    const code = flat[j + 2];
    const suffrage = typeof code === "number" ? SUFFRAGES[code] : undefined;
    if (suffrage === undefined) {
      throw new ProtocolError(
        `invalid snapshot.meta.configuration.servers[${i}].suffrage: expected 0, 1 or 2, got ${
          describe(code)
        }`,
      );
    }
    servers[i] = {
      id: str(flat[j], "snapshot.meta.configuration.servers[].id"),
      address: str(flat[j + 1], "snapshot.meta.configuration.servers[].address"),
      suffrage,
    };
  }
  checkServers(servers, "snapshot.meta.configuration");
  return {
    type: "snapshot",
    term,
    from,
    to,
    meta: { index, term: lastTerm, configurationIndex, configuration: { servers } },
  };
}

/** Every server of a configuration: a valid id (each once) and a non-empty address. */
function checkServers(servers: readonly Server[], where: string): void {
  const seen = new Set<string>();
  for (const [i, s] of servers.entries()) {
    serverId(s.id, `${where}.servers[${i}].id`);
    if (s.address.length === 0 || s.address.length > MAX_ID_LENGTH) {
      throw new ProtocolError(
        `invalid ${where}.servers[${i}].address: expected 1 to ${MAX_ID_LENGTH} characters, got ${
          describe(s.address)
        }`,
      );
    }
    if (seen.has(s.id)) {
      throw new ProtocolError(`invalid ${where}: server ${describe(s.id)} is listed twice`);
    }
    seen.add(s.id);
  }
}

function arity(raw: unknown[], expected: number, type: string): void {
  if (raw.length !== expected) {
    throw new ProtocolError(
      `invalid ${type} message: expected ${expected} fields, got ${raw.length}`,
    );
  }
}

function uint(v: unknown, field: string): number {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
  throw new ProtocolError(`invalid ${field}: expected a non-negative integer, got ${describe(v)}`);
}

function uintAtMost(v: unknown, max: number, field: string): number {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= max) return v;
  throw new ProtocolError(
    `invalid ${field}: expected an integer in [0, ${max}], got ${describe(v)}`,
  );
}

function termOf(v: unknown, field: string): number {
  return uintAtMost(v, MAX_TERM, field);
}

/** A term found in the sender's log: never above the term the sender speaks in. */
function termAtMost(v: unknown, messageTerm: number, field: string): number {
  return uintAtMost(v, messageTerm, field);
}

function index(v: unknown, field: string): number {
  return uintAtMost(v, MAX_INDEX, field);
}

function serverId(v: unknown, field: string): string {
  if (typeof v === "string" && v.length > 0 && v.length <= MAX_ID_LENGTH) return v;
  throw new ProtocolError(
    `invalid ${field}: expected a server id of 1 to ${MAX_ID_LENGTH} characters, got ${
      describe(v)
    }`,
  );
}

function str(v: unknown, field: string): string {
  if (typeof v === "string") return v;
  throw new ProtocolError(`invalid ${field}: expected a string, got ${describe(v)}`);
}

function bool(v: unknown, field: string): boolean {
  if (typeof v === "boolean") return v;
  throw new ProtocolError(`invalid ${field}: expected a boolean, got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Uint8Array) return `${v.length} bytes of binary`;
  if (typeof v === "string") return v.length > 40 ? `a string of ${v.length}` : JSON.stringify(v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// Our messages nest at most two arrays deep (message → entries/servers).
const MAX_DEPTH = 2;

/**
 * Walks the MessagePack structure without building values and rejects what
 * no message contains: maps, extensions, reserved bytes, nesting deeper than
 * our schema, lengths beyond the input, trailing bytes. The decoder library
 * has no depth limit, so without this a frame of nested array headers could
 * make it allocate gigabytes before failing.
 */
function checkShape(b: Uint8Array): void {
  const end = b.length;
  let pos = 0;
  // remaining[d] = items still expected in the open array at depth d.
  const remaining = [1, 0, 0, 0];
  let depth = 0;
  while (true) {
    while (depth >= 0 && remaining[depth] === 0) depth--;
    if (depth < 0) break;
    remaining[depth]--;
    if (pos >= end) throw shapeError("truncated input", pos);
    const h = b[pos++];
    let skip = 0;
    let items = -1;
    if (h <= 0x7f || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) {
      // fixint, nil, booleans
    } else if (h >= 0x90 && h <= 0x9f) {
      items = h & 0x0f;
    } else if (h >= 0xa0 && h <= 0xbf) {
      skip = h & 0x1f;
    } else {
      switch (h) {
        case 0xcc: // uint 8
        case 0xd0: // int 8
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
        case 0xd2:
        case 0xca: // float 32
          skip = 4;
          break;
        case 0xcf:
        case 0xd3:
        case 0xcb: // float 64
          skip = 8;
          break;
        case 0xc4: // bin 8
        case 0xd9: // str 8
          need(b, pos, 1);
          skip = b[pos] + 1;
          break;
        case 0xc5: // bin 16
        case 0xda: // str 16
          need(b, pos, 2);
          skip = ((b[pos] << 8) | b[pos + 1]) + 2;
          break;
        case 0xc6: // bin 32
        case 0xdb: // str 32
          need(b, pos, 4);
          skip = u32(b, pos) + 4;
          break;
        case 0xdc: // array 16
          need(b, pos, 2);
          items = (b[pos] << 8) | b[pos + 1];
          pos += 2;
          break;
        case 0xdd: // array 32
          need(b, pos, 4);
          items = u32(b, pos);
          pos += 4;
          break;
        default:
          throw shapeError(`unexpected MessagePack type byte 0x${h.toString(16)}`, pos - 1);
      }
    }
    if (skip > 0) {
      need(b, pos, skip);
      pos += skip;
    } else if (items >= 0) {
      // Every item takes at least one byte, so a longer claim is garbage.
      if (items > end - pos) throw shapeError(`array of ${items} items overruns the input`, pos);
      if (items > 0) {
        if (depth + 1 > MAX_DEPTH) throw shapeError("arrays nested too deep", pos);
        remaining[++depth] = items;
      }
    }
  }
  if (pos !== end) throw shapeError(`${end - pos} trailing bytes`, pos);
}

function need(b: Uint8Array, pos: number, n: number): void {
  if (pos + n > b.length) throw shapeError("truncated input", pos);
}

function u32(b: Uint8Array, pos: number): number {
  return ((b[pos] << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]) >>> 0;
}

function shapeError(what: string, pos: number): ProtocolError {
  return new ProtocolError(`invalid MessagePack in message at byte ${pos}: ${what}`);
}
