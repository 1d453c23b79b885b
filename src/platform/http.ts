/**
 * Serving HTTP: on Deno our own accept loop handing each connection to
 * `Deno.serve`'s server (or `Deno.serveHttp` for HTTPS, and on a Deno that
 * does not offer the former per connection), on Bun `Bun.serve`. The handler is a plain web-standard
 * `(req: Request) => Promise<Response>`.
 *
 * The server defends itself against clients that hold connections: a
 * request head must be complete within `headTimeoutMs` of the connection
 * opening or of the previous response (half a header line, or a silent
 * keep-alive connection, is closed then), a response must be taken within
 * `writeTimeoutMs`, at most `maxConnections` are open at once (the oldest
 * idle one makes room), and a failing accept (out of file descriptors) backs
 * off instead of ending the process. `Deno.serve` offers none of these (it
 * exits on an accept error), hence the loop of our own on Deno; `Bun.serve`
 * closes idle connections itself (`idleTimeout`) and survives accept errors.
 *
 * HTTPS with client certificates is served by `node:https` on Deno (see
 * {@linkcode listenHttp}), with the same head deadline.
 *
 * @module
 */

import { deferred } from "../deferred.ts";
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
  /**
   * A request head must be complete within this of the connection opening or
   * of the previous response, in ms; else the connection is closed. Default
   * 10000. (On Bun: its idle timeout, in whole seconds.)
   */
  headTimeoutMs?: number;
  /** A response must be taken by the client within this, in ms. Default 30000. */
  writeTimeoutMs?: number;
  /**
   * Most connections open at once; beyond it the oldest connection waiting
   * for a request is closed, or the new one when none is. Default 1024, and
   * at most half the process's open-file limit. (Not on Bun.)
   */
  maxConnections?: number;
  /** Told about each failed accept (e.g. out of file descriptors); the server backs off and retries. */
  onAcceptError?: (error: unknown) => void;
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

/** The parts of Deno's per-connection HTTP server we use (`Deno.serveHttp`). */
interface DenoHttpConn {
  nextRequest(): Promise<
    {
      request: Request;
      respondWith(r: Response | Promise<Response>): Promise<void>;
    } | null
  >;
  close(): void;
}

type ServeHttpFn = (conn: Deno.Conn) => DenoHttpConn;

/** What `Deno.serve` tells a handler besides the request (`completed`: the response is sent). */
interface ServeInfo {
  completed?: Promise<void>;
}

/**
 * `Deno.serve`'s server for one connection we accepted ourselves
 * (`Deno[Deno.internal].serveHttpOnConnection`): the handler is called per
 * request head; aborting `signal` closes the connection at once.
 */
type ServeOnConnectionFn = (
  conn: Deno.Conn,
  signal: AbortSignal,
  handler: (req: Request, info: ServeInfo) => Promise<Response>,
  onError: (error: unknown) => Response,
  onListen: () => void,
) => { finished: Promise<void>; shutdown?: () => Promise<void> };

/**
 * `Deno.serve`'s machinery for a connection of our own, when this Deno has
 * it. It costs ~10 µs of CPU per request less than `Deno.serveHttp` (a bare
 * server answering a small JSON body, measured side by side: 9.5–10 µs
 * against 20–21.5), because a request and its response take fewer ops and
 * the request is built lazily.
 */
function serveOnConnectionFn(): ServeOnConnectionFn | undefined {
  const deno = Deno as unknown as Record<symbol, unknown> & { internal?: symbol };
  const internal = deno.internal === undefined ? undefined : deno[deno.internal];
  const fn = (internal as { serveHttpOnConnection?: unknown } | undefined)?.serveHttpOnConnection;
  return typeof fn === "function" ? fn as ServeOnConnectionFn : undefined;
}

/** A connection served on Deno. */
interface DenoConnection {
  /** Close it now (whatever it is doing). */
  close(): void;
  /** Waiting for a request head (not handling one): may be closed to make room. */
  idle: boolean;
  /** When the current wait (for a head, or for the client to take a response) ends, or Infinity. */
  deadline: number;
  closed: boolean;
  /** Requests being handled or written. */
  active: number;
  /** Settles when the connection has ended. */
  finished: Promise<void>;
}

/** A connection just accepted, closed by `close`; `finished` is set once it is served. */
function newConnection(close: () => void): DenoConnection {
  return {
    close,
    idle: true,
    deadline: Infinity,
    closed: false,
    active: 0,
    finished: Promise.resolve(),
  };
}

function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** Half the soft limit on open files, where the platform tells it (Linux). */
function halfOpenFileLimit(): number {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
    return Number.isSafeInteger(soft) && soft > 0 ? Math.max(16, Math.floor(soft / 2)) : Infinity;
  } catch {
    return Infinity;
  }
}

/** `response` with `connection: close`, so the client expects the end of the connection. */
function closing(response: Response): Response {
  try {
    response.headers.set("connection", "close");
    return response;
  } catch {
    // Immutable headers: copy them.
    const headers = new Headers(response.headers);
    headers.set("connection", "close");
    return new Response(response.body, {
      status: response.status,
      statusText: response.statusText,
      headers,
    });
  }
}

function serveDeno(options: ServeHttpOptions): HttpServer {
  const serveHttp = (Deno as unknown as { serveHttp?: ServeHttpFn }).serveHttp;
  // Plain HTTP goes through Deno.serve's server when it can be had per
  // connection; HTTPS (and a Deno without it) through Deno.serveHttp.
  const serveOnConnection = options.tls ? undefined : serveOnConnectionFn();
  if (serveOnConnection === undefined && typeof serveHttp !== "function") {
    throw new Error("this Deno has no Deno.serveHttp; raftd needs Deno 2.x up to at least 2.9");
  }
  const headTimeoutMs = positive(options.headTimeoutMs, "headTimeoutMs", 10_000);
  const writeTimeoutMs = positive(options.writeTimeoutMs, "writeTimeoutMs", 30_000);
  const maxConnections = Math.min(
    positive(options.maxConnections, "maxConnections", 1024),
    halfOpenFileLimit(),
  );
  if (options.tls?.clientCa !== undefined) {
    throw new TypeError("serveHttp: client certificates need listenHttp() on Deno");
  }
  const listener = options.tls
    ? Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.tls.cert,
      key: options.tls.key,
    })
    : Deno.listen({ hostname: options.hostname, port: options.port });
  const addr = listener.addr as Deno.NetAddr;
  // In the order they were opened: the first idle one is the oldest.
  const connections = new Set<DenoConnection>();
  let stopping = false;
  const stopped = deferred<void>();

  const close = (c: DenoConnection) => {
    if (c.closed) return;
    c.closed = true;
    connections.delete(c);
    c.close();
  };

  // Deadlines are swept, not timed one by one: no timer per request.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const c of connections) if (now > c.deadline) close(c);
  }, Math.max(50, Math.min(headTimeoutMs, writeTimeoutMs) / 4));

  /** The connection waits for the next request head, which must come within the head timeout. */
  const awaitHead = (c: DenoConnection) => {
    c.idle = true;
    c.deadline = performance.now() + headTimeoutMs;
  };

  /** Answer one request of `c`; from then the client has the write timeout to take the answer. */
  const answer = async (c: DenoConnection, request: Request): Promise<Response> => {
    c.idle = false;
    c.deadline = Infinity;
    c.active++;
    let response: Response;
    try {
      response = await options.handler(request);
    } catch (e) {
      response = internalError(e);
    }
    c.deadline = performance.now() + writeTimeoutMs;
    return stopping ? closing(response) : response;
  };

  /**
   * A response of `c` is sent (or failed): back to waiting for a head. Not
   * when stopping: the response said `connection: close`, so the connection
   * ends once it is flushed (and the write deadline still holds).
   */
  const answered = (c: DenoConnection) => {
    c.active--;
    if (c.active === 0 && !c.closed && !stopping) awaitHead(c);
  };

  const viaServeOnConnection = (conn: Deno.Conn, serve: ServeOnConnectionFn): DenoConnection => {
    // The server closes the connection when its signal aborts, by a listener
    // that throws once the connection is gone; thrown inside an event
    // dispatch that would be an uncaught error (the end of the process). So
    // it gets a stand-in signal, and we call that listener ourselves.
    let closeNow: (() => void) | undefined;
    const signal = {
      aborted: false,
      addEventListener: (_type: string, listener: () => void) => closeNow = listener,
      removeEventListener: () => {},
    } as unknown as AbortSignal;
    const c = newConnection(() => {
      try {
        if (closeNow) closeNow();
        else void server.shutdown?.().catch(() => {});
      } catch {
        // already closed
      }
    });
    const done = () => answered(c);
    const server = serve(
      conn,
      signal,
      (request, info) => {
        const response = answer(c, request);
        // Without `completed` (an older Deno) the answer counts as sent once
        // made; the write timeout still bounds the connection until the next head.
        if (info?.completed) info.completed.then(done, done);
        else response.then(done, done);
        return response;
      },
      internalError,
      () => {},
    );
    c.finished = server.finished.catch(() => {}).finally(() => {
      // Ended by itself (or by us): nothing left to close.
      c.closed = true;
      connections.delete(c);
    });
    return c;
  };

  const viaServeHttp = (conn: Deno.Conn, serve: ServeHttpFn): DenoConnection => {
    const http = serve(conn);
    const c = newConnection(() => {
      try {
        http.close();
      } catch {
        // already closed
      }
      try {
        conn.close();
      } catch {
        // already closed
      }
    });
    c.finished = (async () => {
      try {
        while (!c.closed) {
          // A request head must be complete by then (or the sweep closes us).
          const event = await http.nextRequest();
          if (event === null) return; // the client hung up, or the sweep closed us
          try {
            await event.respondWith(await answer(c, event.request));
          } finally {
            answered(c);
          }
        }
      } catch {
        // a broken (or closed) connection: nothing to tell anyone
      } finally {
        close(c);
      }
    })();
    return c;
  };

  const serveConnection = serveOnConnection !== undefined
    ? (conn: Deno.Conn) => viaServeOnConnection(conn, serveOnConnection)
    : (conn: Deno.Conn) => viaServeHttp(conn, serveHttp as ServeHttpFn);

  const acceptLoop = async () => {
    let backoffMs = 0;
    while (!stopping) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        backoffMs = 0;
      } catch (e) {
        if (stopping) return;
        options.onAcceptError?.(e);
        // Typically out of file descriptors: connections still time out and
        // free theirs, so wait for that instead of ending the process.
        backoffMs = Math.min(Math.max(backoffMs * 2, 50), 1000);
        await Promise.race([
          new Promise((resolve) => setTimeout(resolve, backoffMs)),
          stopped.promise,
        ]);
        continue;
      }
      if (stopping) {
        conn.close();
        return;
      }
      if (connections.size >= maxConnections) {
        let oldestIdle: DenoConnection | undefined;
        for (const c of connections) {
          if (c.idle) {
            oldestIdle = c;
            break;
          }
        }
        if (oldestIdle === undefined) {
          conn.close();
          continue;
        }
        close(oldestIdle);
      }
      let c: DenoConnection;
      try {
        c = serveConnection(conn);
      } catch {
        try {
          conn.close();
        } catch {
          // already taken and closed
        }
        continue;
      }
      if (!c.closed) {
        connections.add(c);
        awaitHead(c);
      }
    }
  };
  const accepting = acceptLoop();

  return {
    hostname: addr.hostname,
    port: addr.port,
    async shutdown(graceMs = 2000) {
      if (stopping) return;
      stopping = true;
      stopped.resolve();
      clearInterval(sweep);
      try {
        listener.close();
      } catch {
        // already closed
      }
      await accepting;
      // Idle connections go now; requests in flight get the grace period.
      for (const c of connections) if (c.idle) close(c);
      const finished = () => Promise.allSettled([...connections].map((c) => c.finished));
      await withDeadline(finished(), graceMs);
      const left = [...connections];
      for (const c of left) close(c);
      await withDeadline(Promise.allSettled(left.map((c) => c.finished)), 500);
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
    fetch: (
      req: Request,
      server: BunServer & { timeout(req: Request, s: number): void },
    ) => Response | Promise<Response>;
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
  const headSeconds = Math.min(
    255,
    Math.max(1, Math.ceil(positive(options.headTimeoutMs, "headTimeoutMs", 10_000) / 1000)),
  );
  const server = bun.serve({
    hostname: options.hostname,
    port: options.port,
    fetch: async (req, srv) => {
      // Bun counts a request being handled as idle: give the handler (and
      // the body it reads, under its own deadline) the time it needs, then
      // the connection is back to waiting for a head.
      srv.timeout(req, 120);
      try {
        return await options.handler(req);
      } finally {
        srv.timeout(req, headSeconds);
      }
    },
    error: internalError,
    // Seconds without a byte: a silent connection, or half a request head.
    idleTimeout: headSeconds,
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
