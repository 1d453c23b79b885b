/**
 * The Deno implementation of {@linkcode ./net.ts}: `Deno.listen`,
 * `Deno.connect`, `Deno.listenTls`, `Deno.connectTls`. Use it through
 * `net.ts`, which picks the implementation for the running runtime.
 *
 * @module
 */

import type { ConnectOptions, ListenOptions, NetAddress, NetConn, NetListener } from "./net.ts";

// Every read goes into one buffer per connection, reused (the caller copies
// what it keeps): a new buffer per read would allocate up to a megabyte per
// read, pinned by whatever views it, and freed only when V8 next collects it.
// It grows while reads fill it, up to the maximum.
const MIN_READ_BYTES = 64 * 1024;
const MAX_READ_BYTES = 1024 * 1024;

function toAddress(addr: Deno.Addr): NetAddress {
  return "hostname" in addr
    ? { hostname: addr.hostname, port: addr.port }
    : { hostname: "", port: 0 };
}

class DenoConn implements NetConn {
  readonly localAddr: NetAddress;
  readonly remoteAddr: NetAddress;
  readonly reusesReadBuffer = true;
  #conn: Deno.Conn;
  #buf = new Uint8Array(MIN_READ_BYTES);
  #closed = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.localAddr = toAddress(conn.localAddr);
    this.remoteAddr = toAddress(conn.remoteAddr);
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#closed) return null;
    let n: number | null;
    try {
      n = await this.#conn.read(this.#buf);
    } catch (e) {
      if (this.#closed) return null;
      throw e;
    }
    if (n === null) return null;
    const buf = this.#buf;
    if (n === buf.length && buf.length < MAX_READ_BYTES) {
      // Full: the next read gets a bigger buffer (this one stays the caller's until then).
      this.#buf = new Uint8Array(Math.min(buf.length * 2, MAX_READ_BYTES));
    }
    return buf.subarray(0, n);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      offset += await this.#conn.write(offset === 0 ? bytes : bytes.subarray(offset));
    }
  }

  setNoDelay(noDelay: boolean): void {
    // TLS connections do not expose it (Deno sets TCP_NODELAY by default anyway).
    const conn = this.#conn as Partial<Deno.TcpConn>;
    if (typeof conn.setNoDelay === "function") conn.setNoDelay(noDelay);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    while (true) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }
}

class DenoListener implements NetListener {
  readonly addr: NetAddress;
  #listener: Deno.Listener;
  #closed = false;

  constructor(listener: Deno.Listener) {
    this.#listener = listener;
    this.addr = toAddress(listener.addr);
  }

  async accept(): Promise<NetConn | null> {
    if (this.#closed) return null;
    try {
      return new DenoConn(await this.#listener.accept());
    } catch (e) {
      if (this.#closed) return null;
      throw e;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
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
 * Listens with `Deno.listen` (or `Deno.listenTls` when `tls` is given; client
 * certificates, `tls.clientCaFile`, need `net_node.ts`: Deno's listener cannot
 * request them, so it refuses the option rather than ignore it).
 *
 * @example
 * ```ts
 * import { listen } from "./net_deno.ts";
 * const listener = await listen({ hostname: "127.0.0.1", port: 0 });
 * console.log(listener.addr.port > 0); // true
 * listener.close();
 * ```
 */
export async function listen(options: ListenOptions): Promise<NetListener> {
  const { hostname, port, tls } = options;
  if (tls === undefined) {
    return new DenoListener(Deno.listen({ hostname, port, transport: "tcp" }));
  }
  if (tls.clientCaFile !== undefined) {
    throw new TypeError("Deno.listenTls cannot require client certificates: use net_node.ts");
  }
  const [cert, key] = await Promise.all([
    Deno.readTextFile(tls.certFile),
    Deno.readTextFile(tls.keyFile),
  ]);
  return new DenoListener(Deno.listenTls({ hostname, port, cert, key }));
}

/**
 * Connects with `Deno.connect` (or `Deno.connectTls` when `tls` is given).
 *
 * @example
 * ```ts
 * import { connect } from "./net_deno.ts";
 * async function dial(port: number) {
 *   const conn = await connect({ hostname: "127.0.0.1", port });
 *   conn.close();
 * }
 * ```
 */
export async function connect(options: ConnectOptions): Promise<NetConn> {
  const { hostname, port, tls, signal } = options;
  signal?.throwIfAborted();
  if (tls === undefined) {
    return new DenoConn(await Deno.connect({ hostname, port, transport: "tcp", signal }));
  }
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new TypeError("a client certificate needs both certFile and keyFile");
  }
  const [ca, cert, key] = await Promise.all(
    [tls.caFile, tls.certFile, tls.keyFile].map((f) =>
      f === undefined ? undefined : Deno.readTextFile(f)
    ),
  );
  signal?.throwIfAborted();
  const conn = await Deno.connectTls({
    hostname,
    port,
    caCerts: ca === undefined ? undefined : [ca],
    ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
  });
  const abort = () => conn.close();
  signal?.addEventListener("abort", abort, { once: true });
  try {
    // Surface certificate problems here rather than at the first read or write.
    await conn.handshake();
    signal?.throwIfAborted();
  } catch (e) {
    try {
      conn.close();
    } catch {
      // Closed by the abort.
    }
    throw signal?.aborted ? signal.reason : e;
  } finally {
    signal?.removeEventListener("abort", abort);
  }
  return new DenoConn(conn);
}
