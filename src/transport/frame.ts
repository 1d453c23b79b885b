/**
 * Length-prefixed frames: a 5-byte header (u32 big-endian payload length,
 * u8 kind) followed by the payload. TCP is a byte stream, so the
 * {@linkcode FrameDecoder} reassembles frames split across reads and splits
 * reads that hold several frames.
 *
 * @module
 */

import type { ByteBudget } from "./byte_budget.ts";
import { FrameTooLargeError, ProtocolError } from "./errors.ts";

/** Bytes in a frame header: u32 payload length + u8 kind. */
export const FRAME_HEADER_BYTES = 5;

/** Default largest frame payload accepted: 64 MiB. */
export const DEFAULT_MAX_FRAME_BYTES: number = 64 * 1024 * 1024;

/**
 * The frame kinds of the TCP transport's wire protocol.
 *
 * Handshake: `Hello` (dialer), `Challenge` (acceptor), `Auth` (dialer),
 * then `Ready` or `Reject` (acceptor). Messages: `Message` (dialer), `Ping`
 * (acceptor, periodically, so the dialer can tell a dead peer). Snapshot
 * connections: `SnapshotBegin`, `SnapshotChunk`..., `SnapshotEnd` (sender),
 * then `SnapshotAck` or `SnapshotError` (receiver).
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameKind } from "./frame.ts";
 * const frame = encodeFrame(FrameKind.SnapshotEnd, new Uint8Array());
 * console.log(frame.length); // 5
 * ```
 */
export const FrameKind = {
  Hello: 1,
  Challenge: 2,
  Auth: 3,
  Ready: 4,
  Reject: 5,
  Ping: 6,
  Message: 16,
  SnapshotBegin: 32,
  SnapshotChunk: 33,
  SnapshotEnd: 34,
  SnapshotAck: 35,
  SnapshotError: 36,
} as const;

/** One of the {@linkcode FrameKind} values. */
export type FrameKind = typeof FrameKind[keyof typeof FrameKind];

/**
 * Writes a frame header at `offset` of `target`.
 *
 * @example
 * ```ts
 * import { FRAME_HEADER_BYTES, writeFrameHeader } from "./frame.ts";
 * const buf = new Uint8Array(FRAME_HEADER_BYTES + 3);
 * writeFrameHeader(buf, 0, 16, 3);
 * buf.set([1, 2, 3], FRAME_HEADER_BYTES);
 * ```
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  kind: number,
  payloadLength: number,
): void {
  target[offset] = payloadLength >>> 24;
  target[offset + 1] = (payloadLength >>> 16) & 0xff;
  target[offset + 2] = (payloadLength >>> 8) & 0xff;
  target[offset + 3] = payloadLength & 0xff;
  target[offset + 4] = kind;
}

/**
 * Returns a new buffer holding one whole frame (header + a copy of `payload`).
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameKind } from "./frame.ts";
 * const frame = encodeFrame(FrameKind.Message, new Uint8Array([0x90]));
 * console.log(frame); // Uint8Array(6) [ 0, 0, 0, 1, 16, 144 ]
 * ```
 */
export function encodeFrame(kind: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(frame, 0, kind, payload.length);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

const EMPTY = new Uint8Array(0);
// Split frames up to this size get their whole buffer at once (one copy);
// larger ones grow with what arrives.
const FLAT_FRAME_BYTES = 1024 * 1024 + 64 * 1024;

function join(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Reassembles frames from a byte stream.
 *
 * Feed chunks with {@linkcode FrameDecoder.push}, then call
 * {@linkcode FrameDecoder.next} until it returns `false`; after each `true`
 * the frame is in {@linkcode FrameDecoder.kind} and
 * {@linkcode FrameDecoder.payload}. A payload that lies whole within one
 * chunk is copied out into a buffer of its exact size (`copyPayloads`, the
 * default): chunks may be a connection's reused read buffer, and a large
 * read buffer must not be pinned by a small message kept for long (log
 * entries waiting to be applied). Without `copyPayloads` it is a view of the
 * chunk, for chunks that are fresh buffers the caller owns. A
 * frame split across chunks is copied into a buffer of its size when that is
 * at most 1 MiB; a larger one is gathered as copies of the parts that
 * arrived and joined once complete, so a header announcing 64 MiB costs
 * nothing until the bytes come, and holds no more than them. Until a frame
 * is complete its bytes are reserved against an optional shared
 * {@linkcode ByteBudget}.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder, FrameKind } from "./frame.ts";
 * const bytes = encodeFrame(FrameKind.Message, new Uint8Array([1, 2, 3]));
 * const decoder = new FrameDecoder();
 * decoder.push(bytes.subarray(0, 2)); // split anywhere
 * console.log(decoder.next()); // false: incomplete
 * decoder.push(bytes.subarray(2));
 * console.log(decoder.next(), decoder.kind, decoder.payload); // true 16 Uint8Array(3) [ 1, 2, 3 ]
 * ```
 */
export class FrameDecoder {
  /**
   * Largest payload accepted; a larger announced length throws
   * {@linkcode FrameTooLargeError} from {@linkcode FrameDecoder.next}.
   * May be changed between frames (e.g. small during a handshake).
   */
  maxFrameBytes: number;
  /** Kind of the frame returned by the last successful `next()`. */
  kind = 0;
  /** Payload of the frame returned by the last successful `next()`. */
  payload: Uint8Array = EMPTY;
  /**
   * Where the bytes of a frame split across chunks are reserved until it is
   * complete; a refused reservation throws a {@linkcode ProtocolError}.
   */
  budget: ByteBudget | undefined;

  #chunk: Uint8Array = EMPTY;
  #offset = 0;
  // A header split across chunks is gathered here.
  #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFill = 0;
  // A payload split across chunks is gathered here once its header is known:
  // into one buffer of its size when small enough, else as parts.
  #body: Uint8Array[] | null = null;
  #flat: Uint8Array | null = null;
  #bodyLength = 0;
  #bodyFill = 0;
  #bodyKind = 0;

  #copyPayloads: boolean;

  /**
   * Creates a decoder accepting payloads up to `maxFrameBytes`;
   * `copyPayloads` (default true) copies payloads out of their chunk.
   */
  constructor(
    maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
    options: { copyPayloads?: boolean } = {},
  ) {
    this.#copyPayloads = options.copyPayloads ?? true;
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > 0xffffffff) {
      throw new RangeError(
        `maxFrameBytes must be an integer in [0, 2^32-1], got ${maxFrameBytes}`,
      );
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as (part of) a frame. */
  get buffered(): number {
    return this.#chunk.length - this.#offset + this.#headerFill + this.#bodyFill;
  }

  /** Whether a frame has started (part of its header or payload arrived) and is not complete. */
  get inFrame(): boolean {
    return this.#headerFill > 0 || this.#body !== null;
  }

  /** Drops a partial frame and returns its bytes to the budget (when the connection ends). */
  dispose(): void {
    this.budget?.release(this.#bodyFill);
    this.#body = null;
    this.#flat = null;
    this.#bodyFill = 0;
    this.#chunk = EMPTY;
    this.#offset = 0;
  }

  /**
   * Adds the next chunk of the stream. Call {@linkcode FrameDecoder.next}
   * until it returns `false` before pushing another chunk.
   */
  push(chunk: Uint8Array): void {
    if (this.#offset < this.#chunk.length) {
      throw new Error("FrameDecoder.push: the previous chunk was not fully consumed by next()");
    }
    this.#chunk = chunk;
    this.#offset = 0;
  }

  /**
   * Decodes the next whole frame from the pushed bytes. Returns `false` when
   * more bytes are needed. Throws {@linkcode FrameTooLargeError} when a header
   * announces more than {@linkcode FrameDecoder.maxFrameBytes}.
   */
  next(): boolean {
    const chunk = this.#chunk;
    let offset = this.#offset;
    let available = chunk.length - offset;

    if (this.#body !== null) {
      // Continue a payload split across chunks.
      const take = Math.min(this.#bodyLength - this.#bodyFill, available);
      this.#gather(chunk.subarray(offset, offset + take));
      this.#offset = offset + take;
      if (this.#bodyFill < this.#bodyLength) return false;
      this.kind = this.#bodyKind;
      this.payload = this.#flat ?? join(this.#body, this.#bodyLength);
      this.budget?.release(this.#bodyFill);
      this.#flat = null;
      this.#body = null;
      this.#bodyFill = 0;
      return true;
    }

    let length: number;
    let kind: number;
    if (this.#headerFill === 0 && available >= FRAME_HEADER_BYTES) {
      // Fast path: the whole header is in this chunk.
      length = ((chunk[offset] << 24) | (chunk[offset + 1] << 16) | (chunk[offset + 2] << 8) |
        chunk[offset + 3]) >>> 0;
      kind = chunk[offset + 4];
      offset += FRAME_HEADER_BYTES;
      available -= FRAME_HEADER_BYTES;
    } else {
      const header = this.#header;
      const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, available);
      header.set(chunk.subarray(offset, offset + take), this.#headerFill);
      this.#headerFill += take;
      offset += take;
      available -= take;
      this.#offset = offset;
      if (this.#headerFill < FRAME_HEADER_BYTES) return false;
      this.#headerFill = 0;
      length = ((header[0] << 24) | (header[1] << 16) | (header[2] << 8) | header[3]) >>> 0;
      kind = header[4];
    }

    if (length > this.maxFrameBytes) {
      // The stream cannot be resynchronized after this: drop what is left.
      this.#chunk = EMPTY;
      this.#offset = 0;
      throw new FrameTooLargeError(length, this.maxFrameBytes);
    }

    if (available >= length) {
      this.kind = kind;
      this.payload = this.#copyPayloads
        ? chunk.slice(offset, offset + length)
        : chunk.subarray(offset, offset + length);
      this.#offset = offset + length;
      return true;
    }

    // The payload continues in later chunks: gather it.
    this.#body = [];
    this.#flat = length <= FLAT_FRAME_BYTES ? new Uint8Array(length) : null;
    this.#bodyLength = length;
    this.#bodyFill = 0;
    this.#bodyKind = kind;
    this.#gather(chunk.subarray(offset, offset + available));
    this.#offset = offset + available;
    return false;
  }

  /** Keeps a copy of `bytes`, the next part of the partial payload. */
  #gather(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.budget !== undefined && !this.budget.reserve(bytes.length)) {
      const e = new ProtocolError(
        `too much buffered: expected at most ${this.budget.limit} bytes of partial frames in total, ` +
          `this frame would take ${this.#bodyFill + bytes.length} of its ${this.#bodyLength}`,
      );
      this.dispose();
      throw e;
    }
    if (this.#flat !== null) this.#flat.set(bytes, this.#bodyFill);
    // A copy, so a view never pins the (possibly larger) read buffer behind it.
    else this.#body!.push(bytes.slice());
    this.#bodyFill += bytes.length;
  }
}
