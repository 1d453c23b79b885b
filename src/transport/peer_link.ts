/**
 * One outgoing connection to a peer, with write coalescing and reconnects.
 *
 * @module
 */

import type { Logger } from "../logger.ts";
import type { Message, ServerAddress } from "../core/types.ts";
import { connect, type NetConn, parseAddress, type TlsConnectOptions } from "../platform/net.ts";
import { encodeMessageShared } from "./codec.ts";
import { ProtocolError, TransportError } from "./errors.ts";
import { FRAME_HEADER_BYTES, FrameKind, writeFrameHeader } from "./frame.ts";
import { FrameReader } from "./frame_reader.ts";
import type { ClusterMembership } from "./cluster_id.ts";
import { clientHandshake, type ConnectionPurpose, HANDSHAKE_MAX_FRAME_BYTES } from "./handshake.ts";

/** What a {@linkcode PeerLink} needs from its transport. */
export interface PeerLinkContext {
  /** Our advertised address, sent in the handshake. */
  readonly localAddress: ServerAddress;
  /** The server id we speak for, sent in the handshake (known once a message was sent). */
  readonly localId: string;
  /** Cluster key for the handshake, or `null`. */
  readonly key: CryptoKey | null;
  /** Which cluster we belong to, announced in the handshake. */
  readonly cluster?: ClusterMembership;
  /** TLS settings for dialing, or `undefined` for plain TCP. */
  readonly tls: TlsConnectOptions | undefined;
  /** Largest frame payload the peer accepts; larger messages are dropped. */
  readonly maxFrameBytes: number;
  /** Deadline for connecting plus the handshake, in ms. */
  readonly handshakeTimeoutMs: number;
  /** Longest wait between reconnection attempts, in ms. */
  readonly maxBackoffMs: number;
  /** Where to log. */
  readonly log: Logger;
  /** Registers a background task the transport awaits when it closes. */
  track(task: Promise<unknown>): void;
}

const IDLE = 0;
const CONNECTING = 1;
const READY = 2;
const BACKOFF = 3;
const CLOSED = 4;

// Small frames are packed into batch buffers of this size; one write per batch.
const BATCH_BYTES = 64 * 1024;
// Frames larger than this get a buffer of their own instead of a batch slot.
const LARGE_FRAME_BYTES = 16 * 1024;
const BASE_BACKOFF_MS = 10;
const EMPTY = new Uint8Array(0);

/**
 * An outgoing connection to one peer for one {@linkcode ConnectionPurpose}.
 *
 * `send` encodes the message at once (the caller may reuse it) into a batch
 * buffer; the writer drains batches with one `write` each, so everything sent
 * while a write is in flight (or within one synchronous run) goes out in one
 * write. The link connects on first use. After a failure it waits an
 * exponential backoff (up to `maxBackoffMs`) during which messages are
 * dropped, then reconnects on the next send. Queued bytes are bounded by
 * `maxQueueBytes`: beyond it the newest messages are dropped (Raft retries).
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { ConnectionPurpose } from "./handshake.ts";
 * import { PeerLink } from "./peer_link.ts";
 * const tasks: Promise<unknown>[] = [];
 * const link = new PeerLink({
 *   localAddress: "127.0.0.1:7001", localId: "n1", key: null, tls: undefined, maxFrameBytes: 1 << 26,
 *   handshakeTimeoutMs: 5000, maxBackoffMs: 1000, log: getLogger(["raftd", "transport"]),
 *   track: (t) => tasks.push(t),
 * }, "127.0.0.1:7002", ConnectionPurpose.Control, 1 << 20);
 * link.send({ type: "timeout_now", term: 1, from: "n1", to: "n2" });
 * link.close();
 * await Promise.allSettled(tasks);
 * ```
 */
export class PeerLink {
  /** The peer's address. */
  readonly address: ServerAddress;
  /** What this connection carries. */
  readonly purpose: ConnectionPurpose;
  /** Messages dropped so far (outage, full queue, too large, close). */
  dropped = 0;
  /** Messages handed to the operating system so far. */
  sent = 0;

  #ctx: PeerLinkContext;
  #maxQueueBytes: number;
  #state = IDLE;
  #conn: NetConn | null = null;
  #abort: AbortController | null = null;
  #batch: Uint8Array = new Uint8Array(BATCH_BYTES);
  #batchLength = 0;
  #batchMessages = 0;
  #spare: Uint8Array | null = null;
  // Buffers ready to write, in order, with how many messages each holds.
  #queue: Uint8Array[] = [];
  #queueCounts: number[] = [];
  #queueHead = 0;
  #queuedBytes = 0;
  #queuedMessages = 0;
  #wake: (() => void) | null = null;
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #overflowLogged = false;
  #lastHeard = 0;

  /** Creates an idle link; it connects on the first `send`. */
  constructor(
    ctx: PeerLinkContext,
    address: ServerAddress,
    purpose: ConnectionPurpose,
    maxQueueBytes: number,
  ) {
    this.#ctx = ctx;
    this.address = address;
    this.purpose = purpose;
    this.#maxQueueBytes = maxQueueBytes;
  }

  /** Bytes waiting to be written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Whether the connection is established and past its handshake. */
  get connected(): boolean {
    return this.#state === READY;
  }

  /** Queues `message`; never throws for network reasons (drops instead). */
  send(message: Message): void {
    const state = this.#state;
    if (state >= BACKOFF) {
      this.dropped++;
      return;
    }
    const payload = encodeMessageShared(message);
    const length = payload.length;
    const frameBytes = FRAME_HEADER_BYTES + length;
    if (length > this.#ctx.maxFrameBytes) {
      this.dropped++;
      this.#ctx.log.warn(
        "dropping a {type} message to {address}: {size} bytes exceed the frame limit of {limit}",
        { type: message.type, address: this.address, size: length, limit: this.#ctx.maxFrameBytes },
      );
      return;
    }
    if (this.#queuedBytes !== 0 && this.#queuedBytes + frameBytes > this.#maxQueueBytes) {
      this.dropped++;
      if (!this.#overflowLogged) {
        this.#overflowLogged = true;
        this.#ctx.log.debug("send queue to {address} is full ({bytes} bytes): dropping messages", {
          address: this.address,
          bytes: this.#queuedBytes,
        });
      }
      return;
    }
    if (frameBytes > LARGE_FRAME_BYTES) {
      this.#seal();
      const frame = new Uint8Array(frameBytes);
      writeFrameHeader(frame, 0, FrameKind.Message, length);
      frame.set(payload, FRAME_HEADER_BYTES);
      this.#queue.push(frame);
      this.#queueCounts.push(1);
    } else {
      if (this.#batchLength + frameBytes > BATCH_BYTES) this.#seal();
      const batch = this.#batch;
      const at = this.#batchLength;
      writeFrameHeader(batch, at, FrameKind.Message, length);
      batch.set(payload, at + FRAME_HEADER_BYTES);
      this.#batchLength = at + frameBytes;
      this.#batchMessages++;
    }
    this.#queuedBytes += frameBytes;
    this.#queuedMessages++;
    if (state === IDLE) {
      this.#state = CONNECTING;
      this.#ctx.track(this.#run());
    } else if (this.#wake !== null) {
      // The writer resumes in a microtask: later sends of this run join the batch.
      const wake = this.#wake;
      this.#wake = null;
      wake();
    }
  }

  /**
   * Fails the connection when the peer sent nothing (not even a keepalive
   * ping) for `timeoutMs`: its host may be gone without a reset (a silent
   * partition), and a fresh connection recovers faster than TCP retransmits.
   */
  checkAlive(now: number, timeoutMs: number): void {
    if (this.#state !== READY || now - this.#lastHeard <= timeoutMs) return;
    this.#fail(
      this.#conn,
      new TransportError(`no keepalive from ${this.address} for ${timeoutMs} ms`),
    );
  }

  /** Closes the connection and drops what is queued. Idempotent. */
  close(): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort(new TransportError("transport closed"));
    const conn = this.#conn;
    this.#conn = null;
    conn?.close();
    this.#dropQueued();
    this.#wakeWriter();
  }

  #seal(): void {
    if (this.#batchLength === 0) return;
    this.#queue.push(this.#batch.subarray(0, this.#batchLength));
    this.#queueCounts.push(this.#batchMessages);
    this.#batch = this.#spare ?? new Uint8Array(BATCH_BYTES);
    this.#spare = null;
    this.#batchLength = 0;
    this.#batchMessages = 0;
  }

  #dropQueued(): void {
    this.dropped += this.#queuedMessages;
    this.#queuedMessages = 0;
    this.#queuedBytes = 0;
    this.#queue = [];
    this.#queueCounts = [];
    this.#queueHead = 0;
    this.#batchLength = 0;
    this.#batchMessages = 0;
  }

  #wakeWriter(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #run(): Promise<void> {
    const ctx = this.#ctx;
    const abort = new AbortController();
    this.#abort = abort;
    const timer = setTimeout(() => {
      abort.abort(
        new TransportError(
          `connecting to ${this.address} timed out after ${ctx.handshakeTimeoutMs} ms`,
        ),
      );
    }, ctx.handshakeTimeoutMs);
    let conn: NetConn | null = null;
    const closeOnAbort = () => conn?.close();
    abort.signal.addEventListener("abort", closeOnAbort);
    try {
      conn = await connect({ ...parseAddress(this.address), tls: ctx.tls, signal: abort.signal });
      if (this.#state === CLOSED) {
        conn.close();
        return;
      }
      this.#conn = conn;
      conn.setNoDelay(true);
      const reader = new FrameReader(conn, HANDSHAKE_MAX_FRAME_BYTES);
      await clientHandshake(conn, reader, {
        key: ctx.key,
        cluster: ctx.cluster,
        purpose: this.purpose,
        localAddress: ctx.localAddress,
        localId: ctx.localId,
      });
      if (this.#conn !== conn) return;
      clearTimeout(timer);
      abort.signal.removeEventListener("abort", closeOnAbort);
      this.#state = READY;
      this.#lastHeard = performance.now();
      if (this.#failures > 0) {
        ctx.log.info("connected to {address} again after {failures} failed attempts", {
          address: this.address,
          failures: this.#failures,
        });
      }
      this.#failures = 0;
      this.#overflowLogged = false;
      await Promise.all([this.#writes(conn), this.#watch(conn, reader)]);
    } catch (e) {
      this.#fail(conn, abort.signal.aborted ? abort.signal.reason : e);
    } finally {
      clearTimeout(timer);
      abort.signal.removeEventListener("abort", closeOnAbort);
      if (this.#abort === abort) this.#abort = null;
    }
  }

  async #writes(conn: NetConn): Promise<void> {
    try {
      while (this.#conn === conn) {
        let buf: Uint8Array;
        let count: number;
        if (this.#queueHead < this.#queue.length) {
          const head = this.#queueHead++;
          buf = this.#queue[head];
          count = this.#queueCounts[head];
          this.#queue[head] = EMPTY;
          if (this.#queueHead === this.#queue.length) {
            this.#queue.length = 0;
            this.#queueCounts.length = 0;
            this.#queueHead = 0;
          }
        } else if (this.#batchLength > 0) {
          buf = this.#batch.subarray(0, this.#batchLength);
          count = this.#batchMessages;
          this.#batch = this.#spare ?? new Uint8Array(BATCH_BYTES);
          this.#spare = null;
          this.#batchLength = 0;
          this.#batchMessages = 0;
        } else {
          await new Promise<void>((resolve) => this.#wake = resolve);
          continue;
        }
        await conn.write(buf);
        if (this.#conn !== conn) return;
        this.#queuedBytes -= buf.length;
        this.#queuedMessages -= count;
        this.sent += count;
        if (buf.byteOffset === 0 && buf.buffer.byteLength === BATCH_BYTES) {
          this.#spare = new Uint8Array(buf.buffer as ArrayBuffer);
        }
      }
    } catch (e) {
      this.#fail(conn, e);
    }
  }

  async #watch(conn: NetConn, reader: FrameReader): Promise<void> {
    try {
      // Only keepalive pings come back on a message connection; each is
      // answered, so the acceptor can tell a live dialer from one holding a slot.
      while (await reader.next()) {
        if (reader.kind !== FrameKind.Ping) {
          throw new ProtocolError(
            `unexpected frame of kind ${reader.kind} from ${this.address} after the handshake`,
          );
        }
        this.#lastHeard = performance.now();
        this.#queuePong(conn);
      }
      this.#fail(conn, new TransportError(`connection closed by ${this.address}`));
    } catch (e) {
      this.#fail(conn, e);
    }
  }

  /** Queues a ping frame (no message) behind what is being sent. */
  #queuePong(conn: NetConn): void {
    if (this.#conn !== conn) return;
    if (this.#batchLength + FRAME_HEADER_BYTES > BATCH_BYTES) this.#seal();
    writeFrameHeader(this.#batch, this.#batchLength, FrameKind.Ping, 0);
    this.#batchLength += FRAME_HEADER_BYTES;
    this.#queuedBytes += FRAME_HEADER_BYTES;
    this.#wakeWriter();
  }

  #fail(conn: NetConn | null, error: unknown): void {
    conn?.close();
    if (this.#state === CLOSED) return;
    if (conn !== null ? this.#conn !== conn : this.#state !== CONNECTING) return;
    this.#conn = null;
    this.#dropQueued();
    this.#wakeWriter();
    this.#state = BACKOFF;
    const ctx = this.#ctx;
    const delay = Math.min(ctx.maxBackoffMs, BASE_BACKOFF_MS * 2 ** Math.min(this.#failures, 20)) *
      (0.5 + Math.random() * 0.5);
    const properties = {
      address: this.address,
      purpose: this.purpose,
      error: error instanceof Error ? error.message : String(error),
      delay: Math.round(delay),
    };
    const message = "connection to {address} (purpose {purpose}) failed: {error}; " +
      "dropping messages for {delay} ms";
    if (this.#failures === 0 || error instanceof ProtocolError) ctx.log.warn(message, properties);
    else ctx.log.debug(message, properties);
    this.#failures++;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#state === BACKOFF) this.#state = IDLE;
    }, delay);
  }
}
