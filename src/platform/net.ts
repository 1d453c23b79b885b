/**
 * TCP (and TLS over TCP) behind one small interface, implemented with
 * Deno's native APIs (`Deno.listen`, `Deno.connect`, ...) on Deno and with
 * `node:net` / `node:tls` on Bun. Chosen once, from {@linkcode runtimeName}.
 *
 * @module
 */

import { runtimeName } from "./runtime.ts";
import * as denoNet from "./net_deno.ts";

/**
 * The `node:` implementation, loaded only off Deno: on Deno, loading
 * `node:net`/`node:tls` would start its Node.js compatibility layer (a few
 * MB of memory) for nothing.
 */
const nodeNet: typeof import("./net_node.ts") | undefined = runtimeName === "deno"
  ? undefined
  : await import("./net_node.ts");

/** A host and port. */
export interface NetAddress {
  /** Host name or IP literal. */
  hostname: string;
  /** TCP port. */
  port: number;
}

/** TLS settings of a listener: the server's certificate chain and key, as PEM files. */
export interface TlsListenOptions {
  /** Path of the PEM certificate chain. */
  certFile: string;
  /** Path of the PEM private key. */
  keyFile: string;
  /**
   * Path of a PEM CA: every client must present a certificate that chains to
   * it (mutual TLS), or its handshake fails.
   */
  clientCaFile?: string;
}

/** TLS settings of an outgoing connection. */
export interface TlsConnectOptions {
  /** Path of a PEM CA certificate trusted in addition to the system roots. */
  caFile?: string;
  /** Path of a PEM certificate chain to present to the server (with `keyFile`). */
  certFile?: string;
  /** Path of the private key of `certFile`. */
  keyFile?: string;
}

/** Options of {@linkcode listen}. */
export interface ListenOptions extends NetAddress {
  /** Serve TLS instead of plain TCP. */
  tls?: TlsListenOptions;
}

/** Options of {@linkcode connect}. */
export interface ConnectOptions extends NetAddress {
  /** Speak TLS to the server. */
  tls?: TlsConnectOptions;
  /** Aborts the connection attempt (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * A TCP (or TLS) connection.
 *
 * Bytes returned by `read()` belong to the caller: the implementation never
 * writes into a buffer it has returned, so views of it stay valid.
 */
export interface NetConn extends AsyncIterable<Uint8Array> {
  /** This side's address. */
  readonly localAddr: NetAddress;
  /** The peer's address. */
  readonly remoteAddr: NetAddress;
  /**
   * Whether `read()` returns views of one buffer it reads into again: the
   * bytes are then valid only until the next `read()`, and a caller copies
   * what it keeps. Otherwise every chunk is a fresh buffer the caller owns.
   */
  readonly reusesReadBuffer: boolean;
  /**
   * The next bytes received, or `null` at end of stream. Rejects when the
   * connection failed. Only one read may be pending at a time. See
   * `reusesReadBuffer` for how long the bytes stay valid.
   */
  read(): Promise<Uint8Array | null>;
  /**
   * Writes all of `bytes` (looping over partial writes). Resolves once the
   * caller may reuse `bytes`; rejects when the connection failed.
   */
  write(bytes: Uint8Array): Promise<void>;
  /** Disables (true) or enables (false) Nagle's algorithm. */
  setNoDelay(noDelay: boolean): void;
  /** Closes the connection; pending reads and writes settle soon after. Idempotent. */
  close(): void;
}

/** A listening socket. */
export interface NetListener extends AsyncIterable<NetConn> {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: NetAddress;
  /** The next incoming connection, or `null` once the listener is closed. */
  accept(): Promise<NetConn | null>;
  /** Stops listening; a pending `accept()` resolves `null`. Idempotent. */
  close(): void;
}

/**
 * Starts listening on `hostname:port` (port 0 picks a free port).
 *
 * @example Echo one connection
 * ```ts
 * import { connect, listen } from "./net.ts";
 * const listener = await listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await connect(listener.addr);
 * const server = (await listener.accept())!;
 * await client.write(new TextEncoder().encode("hi"));
 * console.log(new TextDecoder().decode((await server.read())!)); // "hi" (may arrive in parts)
 * client.close();
 * server.close();
 * listener.close();
 * ```
 */
export function listen(options: ListenOptions): Promise<NetListener> {
  if (nodeNet !== undefined) return nodeNet.listen(options);
  // Deno's own TLS listener cannot ask for client certificates; node:tls can, on Deno too.
  if (options.tls?.clientCaFile !== undefined) {
    return import("./net_node.ts").then((node) => node.listen(options));
  }
  return denoNet.listen(options);
}

/**
 * Opens a connection to `hostname:port`.
 *
 * @example
 * ```ts
 * import { connect } from "./net.ts";
 * async function hello(port: number) {
 *   const conn = await connect({ hostname: "127.0.0.1", port });
 *   conn.setNoDelay(true);
 *   await conn.write(new Uint8Array([1, 2, 3]));
 *   conn.close();
 * }
 * ```
 */
export function connect(options: ConnectOptions): Promise<NetConn> {
  return nodeNet === undefined ? denoNet.connect(options) : nodeNet.connect(options);
}

/**
 * Splits `"host:port"` (or `"[v6]:port"`) into its parts.
 * Throws `TypeError` when the text is not such an address.
 *
 * @example
 * ```ts
 * import { parseAddress } from "./net.ts";
 * console.log(parseAddress("127.0.0.1:7001")); // { hostname: "127.0.0.1", port: 7001 }
 * console.log(parseAddress("[::1]:7001")); // { hostname: "::1", port: 7001 }
 * ```
 */
export function parseAddress(address: string): NetAddress {
  const colon = address.lastIndexOf(":");
  let hostname = colon > 0 ? address.slice(0, colon) : "";
  const portText = colon > 0 ? address.slice(colon + 1) : "";
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (hostname === "" || hostname.includes("[") || !(port >= 0 && port <= 65535)) {
    throw new TypeError(`invalid address: expected "host:port" or "[ipv6]:port", got "${address}"`);
  }
  return { hostname, port };
}

/**
 * Formats a host and port as an address, bracketing IPv6 literals.
 *
 * @example
 * ```ts
 * import { formatAddress } from "./net.ts";
 * console.log(formatAddress({ hostname: "::1", port: 7001 })); // "[::1]:7001"
 * ```
 */
export function formatAddress(address: NetAddress): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}
