/**
 * Streaming an InstallSnapshot over its own connection (after the
 * handshake): `SnapshotBegin` (the message), `SnapshotChunk`s, `SnapshotEnd`
 * from the sender, then `SnapshotAck` or `SnapshotError` from the receiver.
 * Chunks flow as the receiver consumes them (TCP flow control does the
 * rest), so neither side ever holds the whole snapshot.
 *
 * @module
 */

import type { InstallSnapshotRequest } from "../core/types.ts";
import type { NetConn } from "../platform/net.ts";
import { decodeMessage, encodeMessage } from "./codec.ts";
import { ProtocolError, SnapshotRejectedError, TransportError } from "./errors.ts";
import { encodeFrame, FRAME_HEADER_BYTES, FrameKind, writeFrameHeader } from "./frame.ts";
import type { FrameReader } from "./frame_reader.ts";
import type { TransportHandler } from "./types.ts";

/** Largest snapshot chunk per frame; bigger source chunks are split. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

// Chunks up to this size are copied behind their header (one write); larger
// ones are written as header + chunk to avoid the copy.
const COPY_CHUNK_BYTES = 64 * 1024;
// How long the receiver waits for the sender to hang up after replying.
const LINGER_MS = 5000;
const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Closes a connection when no progress was made for `ms`. */
class Watchdog {
  expired = false;
  #ms: number;
  #onExpire: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(ms: number, onExpire: () => void) {
    this.#ms = ms;
    this.#onExpire = onExpire;
    this.kick();
  }

  kick(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.expired = true;
      this.#onExpire();
    }, this.#ms);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

type Reply = { kind: number; payload: Uint8Array } | null;

function interpretReply(reply: Reply | Error, address: string): void {
  if (reply === null) {
    throw new TransportError(
      `snapshot transfer to ${address} failed: the connection closed before the receiver answered`,
    );
  }
  if (reply instanceof Error) {
    throw reply instanceof ProtocolError ? reply : new TransportError(
      `snapshot transfer to ${address} failed: ${reply.message}`,
      { cause: reply },
    );
  }
  if (reply.kind === FrameKind.SnapshotAck) return;
  if (reply.kind === FrameKind.SnapshotError) {
    throw new SnapshotRejectedError(textDecoder.decode(reply.payload));
  }
  throw new ProtocolError(
    `invalid snapshot reply from ${address}: expected an ack or error frame, got kind ${reply.kind}`,
  );
}

/** Options of {@linkcode writeSnapshot}. */
export interface WriteSnapshotOptions {
  /** The receiver's address, for messages. */
  address: string;
  /** Fail when no chunk could be written and no answer came for this long, in ms. */
  timeoutMs: number;
}

/**
 * Sends `message` and streams `data` over `conn` (handshake done), then
 * waits for the receiver's answer. Resolves on its ack; rejects with
 * {@linkcode SnapshotRejectedError} when its handler failed, with
 * {@linkcode TransportError} when the connection failed or stalled, and with
 * the source's own error when `data` throws. An early answer (the receiver
 * finished without reading everything) stops the stream. Does not close `conn`.
 *
 * @example
 * ```ts
 * import type { NetConn } from "../platform/net.ts";
 * import type { InstallSnapshotRequest } from "../core/types.ts";
 * import type { FrameReader } from "./frame_reader.ts";
 * import { writeSnapshot } from "./snapshot_stream.ts";
 * async function push(conn: NetConn, reader: FrameReader, m: InstallSnapshotRequest) {
 *   async function* data() { yield new Uint8Array(1024); }
 *   await writeSnapshot(conn, reader, m, data(), { address: "127.0.0.1:7002", timeoutMs: 60000 });
 * }
 * ```
 */
export async function writeSnapshot(
  conn: NetConn,
  reader: FrameReader,
  message: InstallSnapshotRequest,
  data: AsyncIterable<Uint8Array>,
  options: WriteSnapshotOptions,
): Promise<void> {
  const { address, timeoutMs } = options;
  const watchdog = new Watchdog(timeoutMs, () => conn.close());
  let replied = false;
  const replyTask: Promise<Reply | Error> = (async () => {
    try {
      return (await reader.next()) ? { kind: reader.kind, payload: reader.payload.slice() } : null;
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    } finally {
      replied = true;
    }
  })();
  const stalled = () =>
    new TransportError(`snapshot transfer to ${address} stalled: no progress for ${timeoutMs} ms`);
  const write = async (bytes: Uint8Array) => {
    try {
      await conn.write(bytes);
    } catch (e) {
      throw new NetworkWriteError(e);
    }
    watchdog.kick();
  };
  try {
    await write(encodeFrame(FrameKind.SnapshotBegin, encodeMessage(message)));
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    stream: for await (const chunk of data) {
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(`snapshot data must yield Uint8Array chunks, got ${typeof chunk}`);
      }
      for (let offset = 0; offset < chunk.length; offset += SNAPSHOT_CHUNK_BYTES) {
        if (replied) break stream;
        const piece = chunk.subarray(offset, offset + SNAPSHOT_CHUNK_BYTES);
        if (piece.length <= COPY_CHUNK_BYTES) {
          await write(encodeFrame(FrameKind.SnapshotChunk, piece));
        } else {
          writeFrameHeader(header, 0, FrameKind.SnapshotChunk, piece.length);
          await write(header);
          await write(piece);
        }
      }
    }
    if (!replied) await write(encodeFrame(FrameKind.SnapshotEnd, EMPTY));
    const reply = await replyTask;
    if (watchdog.expired) throw stalled();
    interpretReply(reply, address);
  } catch (e) {
    if (watchdog.expired) throw stalled();
    if (e instanceof NetworkWriteError) {
      // The receiver may have answered (e.g. rejected) and hung up: its answer explains more.
      conn.close();
      const reply = await replyTask;
      if (reply !== null && !(reply instanceof Error)) interpretReply(reply, address);
      throw new TransportError(`snapshot transfer to ${address} failed: ${errorText(e.cause)}`, {
        cause: e.cause,
      });
    }
    throw e;
  } finally {
    watchdog.stop();
    conn.close();
    await replyTask;
  }
}

class NetworkWriteError extends Error {
  constructor(cause: unknown) {
    super(errorText(cause), { cause });
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Options of {@linkcode readSnapshot}. */
export interface ReadSnapshotOptions {
  /** The sender's address and connection, for log and error messages. */
  address: string;
  /** The address the sender advertises, handed to `onSnapshot`. */
  from: string;
  /** The server the sender speaks for (from the handshake): the message must come from it. */
  peerId: string;
  /** Give up when no frame arrived for this long while streaming, in ms. */
  timeoutMs: number;
  /** Largest snapshot accepted, in bytes: the stream fails beyond it. Default: no limit. */
  maxBytes?: number;
  /** Settles when the transport closes: stop waiting for the handler then. */
  closed: Promise<void>;
}

/**
 * Receives one snapshot over `conn` (handshake done): hands the message and
 * a stream of its chunks to `handler.onSnapshot`, then answers with an ack
 * (handler resolved) or an error frame carrying the handler's reason.
 * `handler` is `null` while the transport is not started: the sender gets an
 * error. Throws {@linkcode ProtocolError} when the sender breaks the protocol.
 * Does not close `conn`.
 *
 * @example
 * ```ts
 * import type { NetConn } from "../platform/net.ts";
 * import type { FrameReader } from "./frame_reader.ts";
 * import type { TransportHandler } from "./types.ts";
 * import { readSnapshot } from "./snapshot_stream.ts";
 * async function serve(conn: NetConn, reader: FrameReader, handler: TransportHandler) {
 *   await readSnapshot(conn, reader, handler, {
 *     address: "127.0.0.1:7001", from: "127.0.0.1:7001", peerId: "n1", timeoutMs: 60000,
 *     closed: new Promise(() => {}),
 *   });
 * }
 * ```
 */
export async function readSnapshot(
  conn: NetConn,
  reader: FrameReader,
  handler: TransportHandler | null,
  options: ReadSnapshotOptions,
): Promise<void> {
  const { address, timeoutMs } = options;
  const watchdog = new Watchdog(timeoutMs, () => conn.close());
  try {
    if (!(await reader.next())) return;
    if (reader.kind !== FrameKind.SnapshotBegin) {
      throw new ProtocolError(
        `invalid snapshot connection: expected a begin frame, got kind ${reader.kind}`,
      );
    }
    const message = decodeMessage(reader.payload);
    if (message.type !== "snapshot") {
      throw new ProtocolError(
        `invalid snapshot connection: expected a snapshot message, got ${message.type}`,
      );
    }
    if (message.from !== options.peerId) {
      throw new ProtocolError(
        `a snapshot from ${message.from} on a connection of ${options.peerId}: expected only ${options.peerId}`,
      );
    }
    watchdog.kick();

    let outcome: unknown = null;
    if (handler === null) {
      outcome = new Error("the transport is not started");
    } else {
      let ended = false;
      let received = 0;
      const maxBytes = options.maxBytes ?? Infinity;
      const chunks = async function* (): AsyncGenerator<Uint8Array> {
        while (!ended) {
          if (!(await reader.next())) {
            throw new TransportError(
              watchdog.expired
                ? `snapshot stream from ${address} stalled: no data for ${timeoutMs} ms`
                : `snapshot stream from ${address} ended before its end frame`,
            );
          }
          watchdog.kick();
          if (reader.kind === FrameKind.SnapshotChunk) {
            received += reader.payload.length;
            if (received > maxBytes) {
              throw new ProtocolError(
                `snapshot from ${address} too large: expected at most ${maxBytes} bytes, got more`,
              );
            }
            yield reader.payload;
          } else if (reader.kind === FrameKind.SnapshotEnd) {
            ended = true;
            // The handler may take its time to store what it got: no deadline now.
            watchdog.stop();
          } else {
            throw new ProtocolError(
              `invalid snapshot stream from ${address}: expected a chunk or end frame, got kind ${reader.kind}`,
            );
          }
        }
      };
      try {
        const done = handler.onSnapshot(message, chunks(), options.from);
        const result = await Promise.race([
          done.then(() => true),
          options.closed.then(() => false),
        ]);
        if (!result) return;
      } catch (e) {
        outcome = e ?? new Error("onSnapshot rejected");
      }
    }
    watchdog.stop();
    const reply = outcome === null ? encodeFrame(FrameKind.SnapshotAck, EMPTY) : encodeFrame(
      FrameKind.SnapshotError,
      textEncoder.encode(errorText(outcome).slice(0, 1024)),
    );
    try {
      await conn.write(reply);
    } catch {
      return; // The sender is gone; it sees the transfer as failed.
    }
    // Let the sender read the answer and hang up first: closing with unread
    // data in our buffer would reset the connection and could lose the answer.
    const linger = new Watchdog(LINGER_MS, () => conn.close());
    try {
      // Discard the rest of a stream the handler did not read, without decoding it.
      while ((await conn.read()) !== null) { /* until the sender hangs up */ }
    } catch {
      // Done either way.
    } finally {
      linger.stop();
    }
  } finally {
    watchdog.stop();
  }
}
