/**
 * Reads frames from a connection: a {@linkcode FrameDecoder} fed by
 * {@linkcode NetConn.read}.
 *
 * @module
 */

import type { NetConn } from "../platform/net.ts";
import { FrameDecoder } from "./frame.ts";

/**
 * Frames from one connection. {@linkcode FrameReader.next} awaits the next
 * whole frame; hot loops instead drain {@linkcode FrameReader.decoder}
 * synchronously and call {@linkcode FrameReader.fill} only when it is empty,
 * which costs one `await` per network read rather than per frame.
 *
 * @example
 * ```ts
 * import type { NetConn } from "../platform/net.ts";
 * import { FrameReader } from "./frame_reader.ts";
 * async function printFrames(conn: NetConn) {
 *   const reader = new FrameReader(conn, 1024 * 1024);
 *   while (await reader.next()) console.log(reader.kind, reader.payload.length);
 * }
 * ```
 */
export class FrameReader {
  /** The decoder; its `maxFrameBytes` may be raised after a handshake. */
  readonly decoder: FrameDecoder;
  /** Called after each chunk read from the connection (deadlines watch it). */
  onFill: (() => void) | undefined;
  #conn: NetConn;

  /** Creates a reader of `conn` accepting frames up to `maxFrameBytes`. */
  constructor(conn: NetConn, maxFrameBytes: number) {
    this.#conn = conn;
    this.decoder = new FrameDecoder(maxFrameBytes, { copyPayloads: conn.reusesReadBuffer });
  }

  /** Kind of the frame returned by the last `next()`. */
  get kind(): number {
    return this.decoder.kind;
  }

  /** Payload of the frame returned by the last `next()`. */
  get payload(): Uint8Array {
    return this.decoder.payload;
  }

  /**
   * Reads until a whole frame is decoded. Resolves `false` at end of stream
   * (a partial frame at that point is discarded: the peer hung up).
   */
  async next(): Promise<boolean> {
    while (!this.decoder.next()) {
      if (!(await this.fill())) return false;
    }
    return true;
  }

  /** Reads one chunk into the decoder. Resolves `false` at end of stream. */
  async fill(): Promise<boolean> {
    const chunk = await this.#conn.read();
    if (chunk === null) return false;
    this.decoder.push(chunk);
    this.onFill?.();
    return true;
  }
}
