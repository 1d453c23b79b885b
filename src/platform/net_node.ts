/**
 * The `node:net` / `node:tls` implementation of {@linkcode ./net.ts}, used on
 * Bun, and on Deno for TLS listeners that require client certificates. Use
 * it through `net.ts`, which picks the implementation.
 *
 * @module
 */

import * as nodeNet from "node:net";
import * as nodeTls from "node:tls";
import { readFile } from "node:fs/promises";
import type { Buffer } from "node:buffer";
import type { ConnectOptions, ListenOptions, NetAddress, NetConn, NetListener } from "./net.ts";

// Stop reading from the socket while this much is received but not consumed.
const READ_HIGH_WATER_BYTES = 1024 * 1024;

type Waiter<T> = { resolve: (value: T) => void; reject: (error: unknown) => void };

class NodeConn implements NetConn {
  readonly localAddr: NetAddress;
  readonly remoteAddr: NetAddress;
  /** Every chunk is the buffer of one socket `data` event: fresh. */
  readonly reusesReadBuffer = false;
  #socket: nodeNet.Socket;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #queuedBytes = 0;
  #paused = false;
  #ended = false;
  #error: unknown = null;
  #waiter: Waiter<Uint8Array | null> | null = null;
  #closed = false;

  constructor(socket: nodeNet.Socket) {
    this.#socket = socket;
    this.localAddr = { hostname: socket.localAddress ?? "", port: socket.localPort ?? 0 };
    this.remoteAddr = { hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
    socket.on("data", (data: Buffer) => {
      // Hand out plain Uint8Array views: the socket never reuses a data buffer.
      const chunk = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const waiter = this.#waiter;
      if (waiter !== null) {
        this.#waiter = null;
        waiter.resolve(chunk);
        return;
      }
      this.#chunks.push(chunk);
      this.#queuedBytes += chunk.length;
      if (!this.#paused && this.#queuedBytes > READ_HIGH_WATER_BYTES) {
        this.#paused = true;
        socket.pause();
      }
    });
    const end = () => {
      this.#ended = true;
      this.#wake();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", (e: Error) => {
      this.#error ??= e;
      this.#wake();
    });
  }

  #wake(): void {
    const waiter = this.#waiter;
    if (waiter === null) return;
    this.#waiter = null;
    if (this.#error !== null && !this.#closed) waiter.reject(this.#error);
    else waiter.resolve(null);
  }

  read(): Promise<Uint8Array | null> {
    if (this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head];
      this.#chunks[this.#head++] = EMPTY;
      this.#queuedBytes -= chunk.length;
      if (this.#head === this.#chunks.length) {
        this.#chunks = [];
        this.#head = 0;
      }
      if (this.#paused && this.#queuedBytes <= READ_HIGH_WATER_BYTES >>> 1) {
        this.#paused = false;
        this.#socket.resume();
      }
      return Promise.resolve(chunk);
    }
    if (this.#closed) return Promise.resolve(null);
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    if (this.#waiter !== null) {
      return Promise.reject(new Error("NetConn.read: another read is already pending"));
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#closed || this.#socket.destroyed) {
      return Promise.reject(new Error("write on a closed connection"));
    }
    // The callback runs once the socket no longer needs `bytes`.
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  setNoDelay(noDelay: boolean): void {
    this.#socket.setNoDelay(noDelay);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    while (true) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }
}

const EMPTY = new Uint8Array(0);

function ignore(): void {}

class NodeListener implements NetListener {
  readonly addr: NetAddress;
  #server: nodeNet.Server;
  #pending: nodeNet.Socket[] = [];
  #waiter: Waiter<NetConn | null> | null = null;
  #closed = false;

  constructor(server: nodeNet.Server, secure: boolean) {
    this.#server = server;
    const bound = server.address() as nodeNet.AddressInfo;
    this.addr = { hostname: bound.address, port: bound.port };
    server.on(secure ? "secureConnection" : "connection", (socket: nodeNet.Socket) => {
      // An 'error' event without a listener would crash the process.
      socket.on("error", ignore);
      if (this.#closed) {
        socket.destroy();
        return;
      }
      const waiter = this.#waiter;
      if (waiter !== null) {
        this.#waiter = null;
        waiter.resolve(new NodeConn(socket));
      } else {
        this.#pending.push(socket);
      }
    });
    // A client failing its TLS handshake must not take the listener down.
    server.on("tlsClientError", ignore);
    server.on("error", ignore);
  }

  accept(): Promise<NetConn | null> {
    const socket = this.#pending.shift();
    if (socket !== undefined) return Promise.resolve(new NodeConn(socket));
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const socket of this.#pending) socket.destroy();
    this.#pending = [];
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.resolve(null);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<NetConn> {
    while (true) {
      const conn = await this.accept();
      if (conn === null) return;
      yield conn;
    }
  }
}

/**
 * Listens with `node:net` (or `node:tls` when `tls` is given).
 *
 * @example
 * ```ts
 * import { listen } from "./net_node.ts";
 * const listener = await listen({ hostname: "127.0.0.1", port: 0 });
 * console.log(listener.addr.port > 0); // true
 * listener.close();
 * ```
 */
export async function listen(options: ListenOptions): Promise<NetListener> {
  const { hostname, port, tls } = options;
  let server: nodeNet.Server;
  if (tls === undefined) {
    server = nodeNet.createServer();
  } else {
    const [cert, key, ca] = await Promise.all(
      [tls.certFile, tls.keyFile, tls.clientCaFile].map((f) =>
        f === undefined ? undefined : readFile(f)
      ),
    );
    server = nodeTls.createServer({
      cert,
      key,
      // Mutual TLS: a client without a certificate from this CA fails its handshake.
      ...(ca !== undefined ? { ca, requestCert: true, rejectUnauthorized: true } : {}),
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return new NodeListener(server, tls !== undefined);
}

/**
 * Connects with `node:net` (or `node:tls` when `tls` is given).
 *
 * @example
 * ```ts
 * import { connect } from "./net_node.ts";
 * async function dial(port: number) {
 *   const conn = await connect({ hostname: "127.0.0.1", port });
 *   conn.close();
 * }
 * ```
 */
export async function connect(options: ConnectOptions): Promise<NetConn> {
  const { hostname, port, tls, signal } = options;
  signal?.throwIfAborted();
  let socket: nodeNet.Socket;
  let ready: string;
  if (tls === undefined) {
    socket = nodeNet.connect({ host: hostname, port });
    ready = "connect";
  } else {
    if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
      throw new TypeError("a client certificate needs both certFile and keyFile");
    }
    // `ca` replaces the default roots in node:tls; keep them, like Deno's caCerts.
    const ca = tls.caFile === undefined
      ? undefined
      : [...nodeTls.rootCertificates, await readFile(tls.caFile, "utf8")];
    const [cert, key] = await Promise.all(
      [tls.certFile, tls.keyFile].map((f) => f === undefined ? undefined : readFile(f)),
    );
    socket = nodeTls.connect({
      host: hostname,
      port,
      ca,
      ...(cert !== undefined ? { cert, key } : {}),
      servername: nodeNet.isIP(hostname) === 0 ? hostname : undefined,
    });
    ready = "secureConnect";
  }
  // An 'error' event without a listener would crash the process.
  socket.on("error", ignore);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: unknown) => {
      socket.off(ready, onReady);
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(e);
    };
    const onAbort = () => onError(signal?.reason);
    const onReady = () => {
      socket.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    socket.once("error", onError);
    socket.once(ready, onReady);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  return new NodeConn(socket);
}
