/**
 * Errors of the transport layer. A peer that speaks garbage yields a
 * {@linkcode ProtocolError}; a snapshot transfer that fails yields a
 * {@linkcode TransportError} (or its subclass {@linkcode SnapshotRejectedError}
 * when the receiver refused it).
 *
 * @module
 */

import { RaftError } from "../errors.ts";

/**
 * Bytes from a peer do not follow the wire protocol: bad framing, bad
 * MessagePack, a message with missing or mistyped fields, a failed handshake.
 * The connection that carried them is closed; the node keeps running.
 *
 * @example
 * ```ts
 * import { decodeMessage } from "./codec.ts";
 * import { ProtocolError } from "./errors.ts";
 * try {
 *   decodeMessage(new Uint8Array([0xc1]));
 * } catch (e) {
 *   console.log(e instanceof ProtocolError); // true
 * }
 * ```
 */
export class ProtocolError extends RaftError {
  /** Always `"ProtocolError"`, also in bundled or minified code. */
  override name: string = "ProtocolError";
}

/**
 * A frame header announced more bytes than the configured maximum frame size.
 *
 * @example
 * ```ts
 * import { FrameTooLargeError, ProtocolError } from "./errors.ts";
 * const e = new FrameTooLargeError(100, 10);
 * console.log(e instanceof ProtocolError, e.size, e.limit); // true 100 10
 * ```
 */
export class FrameTooLargeError extends ProtocolError {
  /** Always `"FrameTooLargeError"`, also in bundled or minified code. */
  override name: string = "FrameTooLargeError";
  /** The announced frame payload size in bytes. */
  readonly size: number;
  /** The largest payload size accepted, in bytes. */
  readonly limit: number;
  /** Creates the error for a frame of `size` bytes over `limit`. */
  constructor(size: number, limit: number) {
    super(`frame too large: expected at most ${limit} bytes, the peer announced ${size}`);
    this.size = size;
    this.limit = limit;
  }
}

/**
 * A transfer failed for a network reason: the peer is unreachable, the
 * connection broke, it timed out, or the transport is closed.
 *
 * @example
 * ```ts
 * import { TransportError } from "./errors.ts";
 * const e = new TransportError("connection to 127.0.0.1:7002 closed");
 * console.log(e.message);
 * ```
 */
export class TransportError extends RaftError {
  /** Always `"TransportError"`, also in bundled or minified code. */
  override name: string = "TransportError";
}

/**
 * The receiver of a snapshot reported that it could not store it (its
 * `onSnapshot` handler rejected). `message` carries the receiver's reason.
 *
 * @example
 * ```ts
 * import { SnapshotRejectedError, TransportError } from "./errors.ts";
 * const e = new SnapshotRejectedError("disk full");
 * console.log(e instanceof TransportError); // true
 * ```
 */
export class SnapshotRejectedError extends TransportError {
  /** Always `"SnapshotRejectedError"`, also in bundled or minified code. */
  override name: string = "SnapshotRejectedError";
  /** Creates the error with the receiver's reason. */
  constructor(reason: string) {
    super(`snapshot rejected by the receiver: ${reason}`);
  }
}
