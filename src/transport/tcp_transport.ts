/**
 * The TCP transport: length-prefixed frames of MessagePack messages between
 * raftd servers, optionally over TLS and gated by a cluster key.
 *
 * Per peer it keeps two outgoing connections: one for appends (bulk) and one
 * for everything else (heartbeats, votes, responses, TimeoutNow), so a small
 * message never waits behind a large append. Each snapshot gets a connection
 * of its own and is streamed in chunks. Messages flow one way on a
 * connection (dialer to acceptor): every server dials the peers it sends to.
 * Order is kept per connection: appends among appends, the rest among the
 * rest (Raft tolerates reordering across the two). The acceptor pings the
 * dialer every `keepaliveIntervalMs` so a silently dead peer is noticed.
 *
 * A transport speaks for one server: the `from` of the first message it
 * sends; messages from any other `from` are dropped. The handshake names that
 * server (authenticated by the cluster key when there is one), and an
 * acceptor closes a connection at the first message from anyone else.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Logger } from "../logger.ts";
import type { InstallSnapshotRequest, Message, ServerAddress } from "../core/types.ts";
import { describeNetError } from "../platform/net_errors.ts";
import {
  connect,
  formatAddress,
  listen,
  type NetConn,
  type NetListener,
  parseAddress,
  type TlsConnectOptions,
} from "../platform/net.ts";
import type { ClusterMembership } from "./cluster_id.ts";
import { decodeMessage } from "./codec.ts";
import { ByteBudget } from "./byte_budget.ts";
import { ProtocolError, TransportError } from "./errors.ts";
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameKind } from "./frame.ts";
import { FrameReader } from "./frame_reader.ts";
import {
  clientHandshake,
  ConnectionPurpose,
  HANDSHAKE_MAX_FRAME_BYTES,
  importClusterKey,
  serverHandshake,
} from "./handshake.ts";
import { PeerLink, type PeerLinkContext } from "./peer_link.ts";
import { readSnapshot, writeSnapshot } from "./snapshot_stream.ts";
import type { Transport, TransportHandler } from "./types.ts";
import { WarningLimiter } from "./warning_limiter.ts";
import { describeValue } from "../describe_value.ts";
import { deferred } from "../deferred.ts";

/** TLS settings of the TCP transport. */
export interface TcpTransportTlsOptions {
  /** PEM certificate chain presented to peers (as a server, and as a client with `caFile`). */
  certFile: string;
  /** PEM private key of that certificate. */
  keyFile: string;
  /**
   * PEM CA certificate that peers' certificates chain to. With it TLS is
   * mutual: a dialer must present a certificate it signed (or its handshake
   * fails), and presents ours when dialing; the server certificates it checks
   * may also chain to the system roots. Without it only the server side is
   * authenticated, against the system roots.
   */
  caFile?: string;
}

/** Options of {@linkcode TcpTransport.listen}. */
export interface TcpTransportOptions {
  /** Where to listen, `"host:port"`; port 0 picks a free port. */
  address: string;
  /** The address peers should use, when it differs from the bound one (NAT, 0.0.0.0). */
  advertiseAddress?: string;
  /**
   * A secret shared by the cluster (32 random bytes recommended). When set,
   * both ends of every connection prove they know it (HMAC-SHA256
   * challenge/response) before any message is accepted.
   */
  clusterKey?: Uint8Array;
  /**
   * Which cluster this server belongs to. Every connection then carries the
   * cluster id, and connections from another cluster (or naming none) are
   * refused; a server without an id yet adopts the first one it is dialed
   * with. Without it no cluster id is sent or checked.
   */
  cluster?: ClusterMembership;
  /** Speak TLS, with this certificate, to peers that speak TLS too. */
  tls?: TcpTransportTlsOptions;
  /** Largest frame accepted, in bytes. Default 64 MiB. Must match across the cluster. */
  maxFrameBytes?: number;
  /** Logger; default LogTape's `["raftd", "transport"]`. */
  logger?: Logger;
  /**
   * Bytes queued per peer for appends before new ones are dropped. Default
   * 64 MiB (a single message up to `maxFrameBytes` is always accepted when
   * the queue is empty). Other messages get 1/16 of it, at least 1 MiB.
   */
  maxQueueBytes?: number;
  /** Deadline for connecting plus the handshake, in ms. Default 5000. */
  handshakeTimeoutMs?: number;
  /** A snapshot transfer fails after this long without progress, in ms. Default 60000. */
  snapshotTimeoutMs?: number;
  /** Longest wait before reconnecting to a failed peer, in ms. Default 1000. */
  maxBackoffMs?: number;
  /**
   * How often to ping the dialers of incoming connections, in ms. A dialer
   * that hears nothing for 5 intervals reconnects (a silent partition or a
   * vanished host otherwise leaves a connection stuck in TCP retransmits).
   * Must match across the cluster. Default 1000.
   */
  keepaliveIntervalMs?: number;
  /**
   * Most incoming connections past their handshake open at once; more are
   * closed at once (with a rate-limited warning), so a flood cannot exhaust
   * file descriptors. Each peer uses three at most. Default 1024.
   */
  maxInboundConnections?: number;
  /**
   * Most incoming connections still in their handshake (not authenticated
   * yet), counted apart from the peers'. Beyond it the oldest is closed, so
   * strangers holding connections open cannot keep a peer out. Default 64.
   */
  maxPendingConnections?: number;
  /** Most connections still in their handshake from one remote host. Default 8. */
  maxPendingPerHost?: number;
  /**
   * Most bytes of partial frames buffered across all incoming connections; a
   * connection that would pass it is closed (its bytes are freed). Default 256 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * A frame that has begun must arrive whole within this, in ms; an incoming
   * connection silent (not even answering pings) for 5 keepalive intervals is
   * closed too. Default 30000.
   */
  frameTimeoutMs?: number;
  /** Largest snapshot accepted from a peer, in bytes; a larger one fails. Default 4 GiB. */
  maxSnapshotBytes?: number;
}

/** Counters of one peer, from {@linkcode TcpTransport.stats}. */
export interface TcpPeerStats {
  /** The peer's address. */
  address: ServerAddress;
  /** Whether the bulk and control connections are up. */
  connected: { bulk: boolean; control: boolean };
  /** Messages written to the network. */
  sent: number;
  /** Messages dropped (peer unreachable, queue full, too large). */
  dropped: number;
  /** Bytes waiting to be written. */
  queuedBytes: number;
}

/** Counters from {@linkcode TcpTransport.stats}. */
export interface TcpTransportStats {
  /** Messages delivered to the handler. */
  received: number;
  /** Incoming connections currently open (in their handshake or past it). */
  inboundConnections: number;
  /** Incoming connections still in their handshake. */
  pendingConnections: number;
  /** Bytes of partial frames buffered across incoming connections. */
  bufferedBytes: number;
  /** Per-peer counters. */
  peers: TcpPeerStats[];
}

interface Peer {
  bulk: PeerLink;
  control: PeerLink;
}

/** An incoming connection and what the keepalive timer checks of it. */
interface Inbound {
  conn: NetConn;
  reader: FrameReader;
  /** The remote host, while the connection counts as pending (in its handshake). */
  pendingHost: string | undefined;
  /** Whether it carries messages (pinged, closed when silent) rather than a snapshot. */
  messages: boolean;
  /** When bytes last arrived. */
  lastHeard: number;
  /** When the frame being received began, or 0. */
  frameStart: number;
  /** The keepalive ping being written, if any. */
  ping: Promise<void> | null;
}

const PING_FRAME = encodeFrame(FrameKind.Ping, new Uint8Array(0));
const KEEPALIVE_MISSES = 5;

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${describeValue(value)}`);
  }
  return value;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * {@linkcode Transport} over TCP.
 *
 * @example Two transports on loopback
 * ```ts
 * import { TcpTransport } from "./tcp_transport.ts";
 * const a = await TcpTransport.listen({ address: "127.0.0.1:0" });
 * const b = await TcpTransport.listen({ address: "127.0.0.1:0" });
 * const got = Promise.withResolvers<void>();
 * await b.start({
 *   onMessage: (m) => { console.log(m.type); got.resolve(); },
 *   onSnapshot: async () => {},
 * });
 * a.send(b.localAddress, { type: "timeout_now", term: 1, from: "a", to: "b" });
 * await got.promise;
 * await a.close();
 * await b.close();
 * ```
 */
export class TcpTransport implements Transport {
  /** The address peers use to reach this transport (the real port when 0 was asked for). */
  readonly localAddress: ServerAddress;

  #listener: NetListener;
  #log: Logger;
  #strangerWarnings = new WarningLimiter();
  #maxInbound: number;
  #maxPending: number;
  #maxPendingPerHost: number;
  #pendingPerHost = new Map<string, number>();
  #pendingCount = 0;
  #establishedCount = 0;
  #buffered: ByteBudget;
  #frameTimeoutMs: number;
  #maxSnapshotBytes: number;
  #key: CryptoKey | null;
  #cluster: ClusterMembership | undefined;
  #tls: TlsConnectOptions | undefined;
  #maxFrameBytes: number;
  #maxQueueBytes: number;
  #controlQueueBytes: number;
  #handshakeTimeoutMs: number;
  #snapshotTimeoutMs: number;
  #linkContext: PeerLinkContext;
  #handler: TransportHandler | null = null;
  #peers = new Map<ServerAddress, Peer>();
  #inbound = new Map<NetConn, Inbound>();
  #snapshotConns = new Set<NetConn>();
  #keepaliveMs: number;
  #keepaliveTimer: ReturnType<typeof setInterval> | undefined;
  #tasks = new Set<Promise<unknown>>();
  #received = 0;
  #localId = "";
  #foreignDropped = 0;
  #closed = false;
  #closing: Promise<void> | null = null;
  #closedSignal = deferred<void>();

  private constructor(
    listener: NetListener,
    options: TcpTransportOptions,
    key: CryptoKey | null,
    log: Logger,
  ) {
    this.#listener = listener;
    this.#log = log;
    this.#key = key;
    this.#cluster = options.cluster;
    // With a CA, peers authenticate both ways: we present our certificate too.
    this.#tls = options.tls === undefined ? undefined : {
      caFile: options.tls.caFile,
      ...(options.tls.caFile !== undefined
        ? { certFile: options.tls.certFile, keyFile: options.tls.keyFile }
        : {}),
    };
    this.#maxFrameBytes = positiveInteger(
      options.maxFrameBytes,
      "maxFrameBytes",
      DEFAULT_MAX_FRAME_BYTES,
    );
    if (this.#maxFrameBytes > 0xffffffff) {
      throw new RangeError(`maxFrameBytes must be at most 2^32-1, got ${this.#maxFrameBytes}`);
    }
    this.#maxQueueBytes = positiveInteger(options.maxQueueBytes, "maxQueueBytes", 64 << 20);
    this.#controlQueueBytes = Math.max(this.#maxQueueBytes >>> 4, 1 << 20);
    this.#handshakeTimeoutMs = positiveInteger(
      options.handshakeTimeoutMs,
      "handshakeTimeoutMs",
      5000,
    );
    this.#snapshotTimeoutMs = positiveInteger(
      options.snapshotTimeoutMs,
      "snapshotTimeoutMs",
      60_000,
    );
    const maxBackoffMs = positiveInteger(options.maxBackoffMs, "maxBackoffMs", 1000);
    this.#keepaliveMs = positiveInteger(options.keepaliveIntervalMs, "keepaliveIntervalMs", 1000);
    this.#maxInbound = positiveInteger(
      options.maxInboundConnections,
      "maxInboundConnections",
      1024,
    );
    this.#maxPending = positiveInteger(options.maxPendingConnections, "maxPendingConnections", 64);
    this.#maxPendingPerHost = positiveInteger(options.maxPendingPerHost, "maxPendingPerHost", 8);
    this.#buffered = new ByteBudget(
      positiveInteger(options.maxBufferedBytes, "maxBufferedBytes", 256 << 20),
    );
    this.#frameTimeoutMs = positiveInteger(options.frameTimeoutMs, "frameTimeoutMs", 30_000);
    this.#maxSnapshotBytes = positiveInteger(
      options.maxSnapshotBytes,
      "maxSnapshotBytes",
      4 * 1024 ** 3,
    );
    this.localAddress = options.advertiseAddress ??
      formatAddress({ hostname: parseAddress(options.address).hostname, port: listener.addr.port });
    const localId = () => this.#localId;
    this.#linkContext = {
      localAddress: this.localAddress,
      get localId() {
        return localId();
      },
      key,
      cluster: options.cluster,
      tls: this.#tls,
      maxFrameBytes: this.#maxFrameBytes,
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
      maxBackoffMs,
      log,
      track: (task) => this.#track(task),
    };
  }

  /**
   * Binds `options.address` and starts accepting connections. Messages are
   * delivered once {@linkcode TcpTransport.start} is called (dropped before).
   *
   * @throws {TransportError} when the address cannot be bound; the message
   * names the address and the reason, the same on every runtime
   * (`cannot listen on 127.0.0.1:7001: address already in use`).
   * @throws {TypeError} when an address is not `host:port`.
   * @throws {RangeError} when a numeric option is out of range.
   *
   * @example Two transports on free ports
   * ```ts
   * import { TcpTransport } from "./tcp_transport.ts";
   * const a = await TcpTransport.listen({ address: "127.0.0.1:0" });
   * await TcpTransport.listen({ address: a.localAddress })
   *   .catch((e: Error) => console.log(e.message)); // cannot listen on 127.0.0.1:…: address already in use
   * await a.close();
   * ```
   */
  static async listen(options: TcpTransportOptions): Promise<TcpTransport> {
    if (options.advertiseAddress !== undefined) parseAddress(options.advertiseAddress);
    const { hostname, port } = parseAddress(options.address);
    const key = options.clusterKey === undefined
      ? null
      : await importClusterKey(options.clusterKey);
    const log = options.logger ?? getLogger(["raftd", "transport"]);
    const tls = options.tls === undefined ? undefined : {
      certFile: options.tls.certFile,
      keyFile: options.tls.keyFile,
      clientCaFile: options.tls.caFile,
    };
    let listener: NetListener;
    try {
      listener = await listen({ hostname, port, tls });
    } catch (e) {
      // Deno says AddrInUse, Node.js and Bun EADDRINUSE: callers get one error and one wording.
      throw new TransportError(`cannot listen on ${options.address}: ${describeNetError(e)}`, {
        cause: e,
      });
    }
    let transport: TcpTransport;
    try {
      transport = new TcpTransport(listener, options, key, log);
    } catch (e) {
      listener.close();
      throw e;
    }
    transport.#track(transport.#acceptLoop());
    transport.#keepaliveTimer = setInterval(() => transport.#keepalive(), transport.#keepaliveMs);
    log.debug("listening on {address}", { address: transport.localAddress });
    return transport;
  }

  /**
   * Starts delivering incoming messages and snapshots to `handler`.
   *
   * @throws {TransportError} when the transport is closed.
   *
   * @example
   * ```ts
   * import { TcpTransport } from "./tcp_transport.ts";
   * const t = await TcpTransport.listen({ address: "127.0.0.1:0" });
   * await t.start({
   *   onMessage: (m, from) => console.log(m.type, "from", from),
   *   onSnapshot: async (_m, data) => { for await (const _ of data); },
   * });
   * await t.close();
   * ```
   */
  start(handler: TransportHandler): Promise<void> {
    if (this.#closed) return Promise.reject(new TransportError("the transport is closed"));
    this.#handler = handler;
    return Promise.resolve();
  }

  /**
   * Queues `message` for `address`. Appends go on the peer's bulk connection,
   * everything else on its control connection. Never throws for network
   * failures: the message is dropped. (A `snapshot` message must go through
   * {@linkcode TcpTransport.sendSnapshot}; given here it is dropped.)
   *
   * @example
   * ```ts
   * import { TcpTransport } from "./tcp_transport.ts";
   * const a = await TcpTransport.listen({ address: "127.0.0.1:0" });
   * // Nobody listens on the address: the message is dropped, nothing throws.
   * a.send("127.0.0.1:9", { type: "timeout_now", term: 1, from: "a", to: "b" });
   * await a.close();
   * ```
   */
  send(address: ServerAddress, message: Message): void {
    if (this.#closed || !this.#speaksFor(message)) return;
    let peer = this.#peers.get(address);
    if (peer === undefined) {
      peer = {
        bulk: new PeerLink(
          this.#linkContext,
          address,
          ConnectionPurpose.Bulk,
          this.#maxQueueBytes,
        ),
        control: new PeerLink(
          this.#linkContext,
          address,
          ConnectionPurpose.Control,
          this.#controlQueueBytes,
        ),
      };
      this.#peers.set(address, peer);
    }
    if (message.type === "append") {
      peer.bulk.send(message);
    } else if (message.type === "snapshot") {
      this.#log.warn("dropping a snapshot message to {address}: use sendSnapshot", { address });
    } else {
      peer.control.send(message);
    }
  }

  /**
   * Streams a snapshot to `address` on a connection of its own. Resolves
   * when the receiver's `onSnapshot` resolved.
   *
   * @throws {TransportError} when the peer is unreachable, the transfer stalls
   * past `snapshotTimeoutMs` or the transport closes (a protocol violation or
   * failed handshake is the `cause`).
   * @throws {SnapshotRejectedError} when the receiver's `onSnapshot` rejected.
   * @throws {Error} whatever `data` threw while it was read.
   *
   * @example
   * ```ts
   * import { TcpTransport } from "./tcp_transport.ts";
   * const a = await TcpTransport.listen({ address: "127.0.0.1:0" });
   * const b = await TcpTransport.listen({ address: "127.0.0.1:0" });
   * await b.start({
   *   onMessage: () => {},
   *   onSnapshot: async (m, data) => {
   *     let bytes = 0;
   *     for await (const chunk of data) bytes += chunk.length;
   *     console.log(m.meta.index, bytes); // 10 6
   *   },
   * });
   * async function* state() { yield new Uint8Array(2); yield new Uint8Array(4); }
   * const meta = { index: 10, term: 1, configuration: { servers: [] }, configurationIndex: 1 };
   * await a.sendSnapshot(b.localAddress, { type: "snapshot", term: 1, from: "a", to: "b", meta }, state());
   * await a.close();
   * await b.close();
   * ```
   */
  async sendSnapshot(
    address: ServerAddress,
    message: InstallSnapshotRequest,
    data: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    if (this.#closed) throw new TransportError("the transport is closed");
    if (!this.#speaksFor(message)) {
      throw new TransportError(
        `cannot send a snapshot from ${message.from}: this transport speaks for ${this.#localId}`,
      );
    }
    const task = this.#sendSnapshot(address, message, data);
    this.#track(task);
    return await task;
  }

  async #sendSnapshot(
    address: ServerAddress,
    message: InstallSnapshotRequest,
    data: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    let target;
    try {
      target = parseAddress(address);
    } catch (e) {
      throw new TransportError(`cannot send a snapshot: ${errorText(e)}`, { cause: e });
    }
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new TransportError(`connecting to ${address} timed out`)),
      this.#handshakeTimeoutMs,
    );
    let conn: NetConn | null = null;
    const closeOnAbort = () => conn?.close();
    abort.signal.addEventListener("abort", closeOnAbort);
    try {
      try {
        conn = await connect({ ...target, tls: this.#tls, signal: abort.signal });
        this.#snapshotConns.add(conn);
        if (this.#closed) throw new TransportError("the transport is closed");
        conn.setNoDelay(true);
        const reader = new FrameReader(conn, HANDSHAKE_MAX_FRAME_BYTES);
        await clientHandshake(conn, reader, {
          key: this.#key,
          cluster: this.#cluster,
          purpose: ConnectionPurpose.Snapshot,
          localAddress: this.localAddress,
          localId: this.#localId,
        });
        clearTimeout(timer);
        abort.signal.removeEventListener("abort", closeOnAbort);
        reader.decoder.maxFrameBytes = this.#maxFrameBytes;
        await writeSnapshot(conn, reader, message, data, {
          address,
          timeoutMs: this.#snapshotTimeoutMs,
        });
      } catch (e) {
        if (this.#closed) throw new TransportError("the transport is closed", { cause: e });
        if (abort.signal.aborted) throw abort.signal.reason;
        if (e instanceof TransportError) throw e;
        if (e instanceof ProtocolError) {
          throw new TransportError(`snapshot transfer to ${address} failed: ${e.message}`, {
            cause: e,
          });
        }
        if (conn !== null) throw e; // the snapshot source's own error
        throw new TransportError(`cannot connect to ${address}: ${errorText(e)}`, { cause: e });
      }
    } finally {
      clearTimeout(timer);
      abort.signal.removeEventListener("abort", closeOnAbort);
      if (conn !== null) {
        conn.close();
        this.#snapshotConns.delete(conn);
      }
    }
  }

  /** Whether `message` comes from the server this transport speaks for (the first sender). */
  #speaksFor(message: Message): boolean {
    if (this.#localId === "") this.#localId = message.from;
    if (message.from === this.#localId) return true;
    if (this.#foreignDropped++ === 0) {
      this.#log.warn(
        "dropping a {type} message from {from}: this transport speaks for {id} (its first sender)",
        { type: message.type, from: message.from, id: this.#localId },
      );
    }
    return false;
  }

  /**
   * Counters for monitoring.
   *
   * @example
   * ```ts
   * import { TcpTransport } from "./tcp_transport.ts";
   * const t = await TcpTransport.listen({ address: "127.0.0.1:0" });
   * console.log(t.stats()); // { received: 0, inboundConnections: 0, peers: [] }
   * await t.close();
   * ```
   */
  stats(): TcpTransportStats {
    const peers: TcpPeerStats[] = [];
    for (const [address, { bulk, control }] of this.#peers) {
      peers.push({
        address,
        connected: { bulk: bulk.connected, control: control.connected },
        sent: bulk.sent + control.sent,
        dropped: bulk.dropped + control.dropped,
        queuedBytes: bulk.queuedBytes + control.queuedBytes,
      });
    }
    return {
      received: this.#received,
      inboundConnections: this.#inbound.size,
      pendingConnections: this.#pendingCount,
      bufferedBytes: this.#buffered.used,
      peers,
    };
  }

  /**
   * Stops listening, closes every connection, fails snapshot transfers in
   * flight, and resolves once all of its I/O has settled. Idempotent.
   *
   * @example
   * ```ts
   * import { TcpTransport } from "./tcp_transport.ts";
   * const t = await TcpTransport.listen({ address: "127.0.0.1:0" });
   * await t.close();
   * await t.close(); // idempotent
   * ```
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#closed = true;
    this.#handler = null;
    this.#closedSignal.resolve();
    clearInterval(this.#keepaliveTimer);
    this.#listener.close();
    for (const peer of this.#peers.values()) {
      peer.bulk.close();
      peer.control.close();
    }
    for (const { conn, ping } of this.#inbound.values()) {
      conn.close();
      if (ping !== null) this.#track(ping);
    }
    for (const conn of this.#snapshotConns) conn.close();
    this.#closing = (async () => {
      // Tasks may start others while settling (e.g. a last reconnect): drain until none.
      while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
      this.#log.debug("closed {address}", { address: this.localAddress });
    })();
    return this.#closing;
  }

  #track(task: Promise<unknown>): void {
    this.#tasks.add(task);
    const done = () => this.#tasks.delete(task);
    task.then(done, done);
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      let conn: NetConn | null;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closed) return;
        this.#log.warn("accepting a connection on {address} failed: {error}", {
          address: this.localAddress,
          error: errorText(e),
        });
        // Typically out of file descriptors: give the system a moment.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          new Promise((resolve) => timer = setTimeout(resolve, 100)),
          this.#closedSignal.promise,
        ]);
        clearTimeout(timer);
        continue;
      }
      if (conn === null) return;
      if (this.#closed) {
        conn.close();
        return;
      }
      const host = conn.remoteAddr.hostname;
      const fromHost = this.#pendingPerHost.get(host) ?? 0;
      const refusal = this.#establishedCount >= this.#maxInbound
        ? `already ${this.#establishedCount} incoming connections past ` +
          "their handshake (maxInboundConnections)"
        : fromHost >= this.#maxPendingPerHost
        ? `already ${fromHost} connections in their handshake from ${host} (maxPendingPerHost)`
        : undefined;
      if (refusal !== undefined) {
        const remote = formatAddress(conn.remoteAddr);
        conn.close();
        this.#warnLimited("refused a connection from {remote}: {error}", remote, refusal);
        continue;
      }
      if (this.#pendingCount >= this.#maxPending) this.#evictOldestPending();
      this.#pendingCount++;
      this.#pendingPerHost.set(host, fromHost + 1);
      this.#track(this.#serve(conn, host));
    }
  }

  /**
   * Closes the connection that has been in its handshake the longest. A
   * peer's handshake takes a round trip or two, so to keep a peer out by
   * filling the slots a stranger must open maxPendingConnections connections
   * within that time, again and again; refusing the newest instead would let
   * slow strangers hold every slot for good.
   */
  #evictOldestPending(): void {
    for (const inbound of this.#inbound.values()) {
      if (inbound.pendingHost === undefined) continue;
      this.#leavePending(inbound);
      inbound.conn.close();
      this.#warnLimited(
        "closing the connection from {remote}: {error}",
        formatAddress(inbound.conn.remoteAddr),
        `still in its handshake, the oldest of ${this.#maxPending} (maxPendingConnections)`,
      );
      return;
    }
  }

  /** The connection is gone or was evicted: it no longer counts as pending. */
  #leavePending(inbound: Inbound): void {
    const host = inbound.pendingHost;
    if (host === undefined) return;
    inbound.pendingHost = undefined;
    this.#pendingCount--;
    const n = (this.#pendingPerHost.get(host) ?? 1) - 1;
    if (n > 0) this.#pendingPerHost.set(host, n);
    else this.#pendingPerHost.delete(host);
  }

  async #serve(conn: NetConn, host: string): Promise<void> {
    let remote = formatAddress(conn.remoteAddr);
    const reader = new FrameReader(conn, HANDSHAKE_MAX_FRAME_BYTES);
    const inbound: Inbound = {
      conn,
      reader,
      pendingHost: host,
      messages: false,
      lastHeard: performance.now(),
      frameStart: 0,
      ping: null,
    };
    this.#inbound.set(conn, inbound);
    let established = false;
    let handshakeDone = false;
    const timer = setTimeout(() => {
      if (!handshakeDone) conn.close();
    }, this.#handshakeTimeoutMs);
    try {
      conn.setNoDelay(true);
      let peer;
      try {
        peer = await serverHandshake(conn, reader, { key: this.#key, cluster: this.#cluster });
      } catch (e) {
        if (this.#closed) return;
        if (e instanceof ProtocolError) {
          this.#warnLimited("rejected a connection from {remote}: {error}", remote, e);
        } else {
          this.#log.debug("connection from {remote} failed during the handshake: {error}", {
            remote,
            error: errorText(e),
          });
        }
        return;
      } finally {
        handshakeDone = true;
        clearTimeout(timer);
      }
      if (inbound.pendingHost === undefined) return; // evicted meanwhile
      this.#leavePending(inbound);
      this.#establishedCount++;
      established = true;
      remote = `${peer.id} at ${peer.address || "?"} (${remote})`;
      reader.decoder.maxFrameBytes = this.#maxFrameBytes;
      reader.decoder.budget = this.#buffered;
      reader.onFill = () => this.#heard(inbound);
      if (peer.purpose === ConnectionPurpose.Snapshot) {
        await readSnapshot(conn, reader, this.#handler, {
          address: remote,
          from: peer.address,
          peerId: peer.id,
          timeoutMs: this.#snapshotTimeoutMs,
          maxBytes: this.#maxSnapshotBytes,
          closed: this.#closedSignal.promise,
        });
      } else {
        inbound.messages = true;
        await this.#receiveMessages(inbound, peer.address, peer.id);
      }
    } catch (e) {
      if (this.#closed) return;
      if (e instanceof ProtocolError) {
        this.#warnLimited("closing the connection from {remote}: {error}", remote, e);
      } else {
        this.#log.debug("connection from {remote} failed: {error}", {
          remote,
          error: errorText(e),
        });
      }
    } finally {
      clearTimeout(timer);
      conn.close();
      this.#leavePending(inbound);
      if (established) this.#establishedCount--;
      reader.decoder.dispose();
      this.#inbound.delete(conn);
      if (inbound.ping !== null) await inbound.ping;
    }
  }

  /** Bytes arrived on `inbound`: note when, and since when a frame has been incomplete. */
  #heard(inbound: Inbound): void {
    const now = performance.now();
    inbound.lastHeard = now;
    if (!inbound.reader.decoder.inFrame) inbound.frameStart = 0;
    else if (inbound.frameStart === 0) inbound.frameStart = now;
  }

  #keepalive(): void {
    const now = performance.now();
    const timeoutMs = this.#keepaliveMs * KEEPALIVE_MISSES;
    for (const inbound of this.#inbound.values()) {
      const { conn } = inbound;
      // A frame begun long ago is a trickle that would hold its buffer forever.
      const stalled = inbound.frameStart !== 0 && now - inbound.frameStart > this.#frameTimeoutMs;
      // A dialer answers every ping: silence means it is gone or only holding the slot.
      const silent = inbound.messages && now - inbound.lastHeard > timeoutMs;
      if (stalled || silent) {
        this.#warnLimited(
          "closing the connection from {remote}: {error}",
          formatAddress(conn.remoteAddr),
          stalled
            ? `a frame still incomplete after ${this.#frameTimeoutMs} ms (frameTimeoutMs)`
            : `nothing received for ${timeoutMs} ms`,
        );
        conn.close();
        continue;
      }
      // A ping still being written means the dialer is not reading: no need for more.
      if (!inbound.messages || inbound.ping !== null) continue;
      const settle = () => {
        inbound.ping = null;
      };
      inbound.ping = conn.write(PING_FRAME).then(settle, settle);
    }
    for (const peer of this.#peers.values()) {
      peer.bulk.checkAlive(now, timeoutMs);
      peer.control.checkAlive(now, timeoutMs);
    }
  }

  /** Warnings a stranger can trigger are rate limited, so garbage cannot flood the log. */
  #warnLimited(message: string, remote: string, error: unknown): void {
    if (!this.#strangerWarnings.allow()) return;
    const suppressed = this.#strangerWarnings.takeSuppressed();
    this.#log.warn(
      message + (suppressed > 0 ? " ({suppressed} similar warnings suppressed)" : ""),
      {
        remote,
        error: errorText(error),
        suppressed,
      },
    );
  }

  async #receiveMessages(inbound: Inbound, from: string, peerId: string): Promise<void> {
    const { reader } = inbound;
    const decoder = reader.decoder;
    while (true) {
      // Drain every whole frame already received before awaiting the next read.
      while (decoder.next()) {
        // The dialer's answer to a keepalive ping.
        if (decoder.kind === FrameKind.Ping) continue;
        if (decoder.kind !== FrameKind.Message) {
          throw new ProtocolError(
            `unexpected frame of kind ${decoder.kind} on a message connection`,
          );
        }
        const message = decodeMessage(decoder.payload);
        if (message.type === "snapshot") {
          throw new ProtocolError("a snapshot message must come on a snapshot connection");
        }
        if (message.from !== peerId) {
          throw new ProtocolError(
            `a message from ${message.from} on a connection of ${peerId}: expected only ${peerId}`,
          );
        }
        const handler = this.#handler;
        if (handler === null) continue;
        this.#received++;
        try {
          handler.onMessage(message, from);
        } catch (e) {
          this.#log.error("the message handler threw: {error}", { error: errorText(e) });
        }
      }
      if (this.#closed || !(await reader.fill())) return;
    }
  }
}
