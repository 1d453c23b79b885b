/**
 * Serving HTTP: `Deno.serve` on Deno, `Bun.serve` on Bun. The handler is a
 * plain web-standard `(req: Request) => Promise<Response>`.
 *
 * @module
 */

import { serveNodeHttps } from "./https_node.ts";
import { runtimeName } from "./runtime.ts";

/**
 * A request handler: web-standard Request in, Response out.
 *
 * @example
 * ```ts
 * import type { HttpHandler } from "./http.ts";
 * const hello: HttpHandler = () => new Response("hello");
 * ```
 */
export type HttpHandler = (req: Request) => Response | Promise<Response>;

/**
 * Where and what to serve.
 *
 * @example
 * ```ts
 * import type { ServeHttpOptions } from "./http.ts";
 * const options: ServeHttpOptions = { hostname: "127.0.0.1", port: 0, handler: () => new Response() };
 * ```
 */
export interface ServeHttpOptions {
  /** Interface to bind, e.g. `127.0.0.1`. */
  hostname: string;
  /** Port to bind; 0 picks a free one (read it back from {@linkcode HttpServer.port}). */
  port: number;
  /** Answers every request. Should not throw; if it does the client gets a 500. */
  handler: HttpHandler;
  /** Serve HTTPS with this certificate (see {@linkcode listenHttp} for client certificates). */
  tls?: HttpTlsOptions;
}

/**
 * HTTPS settings: PEM text, not file names.
 *
 * @example
 * ```ts
 * import type { HttpTlsOptions } from "./http.ts";
 * const tls: HttpTlsOptions = { cert: "-----BEGIN CERTIFICATE-----...", key: "-----BEGIN PRIVATE KEY-----..." };
 * ```
 */
export interface HttpTlsOptions {
  /** Certificate chain presented to clients. */
  cert: string;
  /** Its private key. */
  key: string;
  /**
   * Require every client to present a certificate that chains to this CA
   * (mutual TLS); others fail the TLS handshake.
   */
  clientCa?: string;
}

/**
 * A running HTTP server.
 *
 * @example
 * ```ts
 * import type { HttpServer } from "./http.ts";
 * function where(s: HttpServer): string {
 *   return `http://${s.hostname}:${s.port}`;
 * }
 * ```
 */
export interface HttpServer {
  /** The bound interface. */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
  /**
   * Stop accepting connections, let in-flight requests finish for up to
   * `graceMs` (default 2000), then close everything.
   */
  shutdown(graceMs?: number): Promise<void>;
}

function internalError(e: unknown): Response {
  return new Response(
    JSON.stringify({ error: `internal error: ${e instanceof Error ? e.message : String(e)}` }),
    { status: 500, headers: { "content-type": "application/json" } },
  );
}

/** Resolves true when `p` settles within `ms`, false otherwise. */
function withDeadline(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms));
  return Promise.race([p.then(() => true, () => true), deadline]).finally(() =>
    clearTimeout(timer)
  );
}

function serveDeno(options: ServeHttpOptions): HttpServer {
  if (options.tls?.clientCa !== undefined) {
    throw new TypeError("serveHttp: client certificates need listenHttp() on Deno");
  }
  const abort = new AbortController();
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: abort.signal,
    onListen: () => {},
    onError: internalError,
    ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
  }, options.handler);
  const addr = server.addr as Deno.NetAddr;
  return {
    hostname: addr.hostname,
    port: addr.port,
    async shutdown(graceMs = 2000) {
      if (await withDeadline(server.shutdown(), graceMs)) return;
      // Requests still running after the grace period: cut them off.
      try {
        abort.abort();
      } catch {
        // the server finished in the meantime
      }
      await withDeadline(server.finished, 500);
    },
  };
}

interface BunServer {
  readonly hostname: string;
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}

interface BunGlobal {
  serve(options: {
    hostname: string;
    port: number;
    fetch: HttpHandler;
    error: (e: Error) => Response;
    idleTimeout: number;
    maxRequestBodySize: number;
    tls?: {
      cert: string;
      key: string;
      ca?: string;
      requestCert?: boolean;
      rejectUnauthorized?: boolean;
    };
  }): BunServer;
}

function serveBun(options: ServeHttpOptions): HttpServer {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  const server = bun.serve({
    hostname: options.hostname,
    port: options.port,
    fetch: options.handler,
    error: internalError,
    // Seconds; long enough for the longest apply/read timeout we allow.
    idleTimeout: 120,
    // The API enforces its own (smaller, configurable) limits.
    maxRequestBodySize: 1 << 30,
    ...(options.tls
      ? {
        tls: {
          cert: options.tls.cert,
          key: options.tls.key,
          ...(options.tls.clientCa !== undefined
            ? { ca: options.tls.clientCa, requestCert: true, rejectUnauthorized: true }
            : {}),
        },
      }
      : {}),
  });
  return {
    hostname: server.hostname,
    port: server.port,
    async shutdown(graceMs = 2000) {
      if (await withDeadline(Promise.resolve(server.stop(false)), graceMs)) return;
      await withDeadline(Promise.resolve(server.stop(true)), 500);
    },
  };
}

/**
 * Start serving HTTP. Throws when the address cannot be bound (e.g. in use).
 *
 * @example
 * ```ts
 * import { serveHttp } from "./http.ts";
 * const server = serveHttp({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   handler: () => new Response("ok"),
 * });
 * const res = await fetch(`http://127.0.0.1:${server.port}/`);
 * console.log(await res.text()); // "ok"
 * await server.shutdown();
 * ```
 */
export function serveHttp(options: ServeHttpOptions): HttpServer {
  if (runtimeName === "node") {
    throw new Error("serving HTTP needs Deno or Bun: raftd serve does not run on Node.js");
  }
  return runtimeName === "bun" ? serveBun(options) : serveDeno(options);
}

/**
 * Start serving HTTP or HTTPS, with client certificates required when
 * `tls.clientCa` is given. Deno's own server cannot ask for client
 * certificates, so that case is served by `node:https` (bridged to the same
 * web-standard handler); everything else is {@linkcode serveHttp}.
 * Rejects when the address cannot be bound or the certificate is unusable.
 *
 * @example
 * ```ts
 * import { listenHttp } from "./http.ts";
 * const server = await listenHttp({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   handler: () => new Response("ok"),
 * });
 * console.log((await fetch(`http://127.0.0.1:${server.port}/`)).status); // 200
 * await server.shutdown();
 * ```
 */
export async function listenHttp(options: ServeHttpOptions): Promise<HttpServer> {
  if (runtimeName === "deno" && options.tls?.clientCa !== undefined) {
    return await serveNodeHttps(options, options.tls);
  }
  return serveHttp(options);
}
