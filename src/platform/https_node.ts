/**
 * HTTPS with client certificates on Deno, through `node:https` (Deno's own
 * server cannot request them), bridged to a web-standard handler: each
 * request becomes a `Request`, each `Response` is streamed back.
 *
 * @module
 */

import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as https from "node:https";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import type { HttpServer, HttpTlsOptions, ServeHttpOptions } from "./http.ts";

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  return new Request(`https://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
    method,
    headers,
    body: hasBody ? Readable.toWeb(req) as unknown as ReadableStream<Uint8Array> : undefined,
    signal,
    // Needed by fetch's Request for a streamed body.
    ...(hasBody ? { duplex: "half" } : {}),
  } as RequestInit);
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => headers[name] = value);
  res.writeHead(response.status, headers);
  if (response.body !== null) {
    for await (const chunk of response.body) {
      if (res.destroyed) break;
      if (!res.write(chunk)) await once(res, "drain");
    }
  }
  res.end();
}

function internalError(e: unknown): Response {
  return new Response(
    JSON.stringify({ error: `internal error: ${e instanceof Error ? e.message : String(e)}` }),
    { status: 500, headers: { "content-type": "application/json" } },
  );
}

/**
 * Serve `options.handler` over HTTPS, requiring client certificates that
 * chain to `tls.clientCa`.
 *
 * @example
 * ```ts ignore
 * import { serveNodeHttps } from "./https_node.ts";
 * const server = await serveNodeHttps(
 *   { hostname: "127.0.0.1", port: 0, handler: () => new Response("ok") },
 *   { cert, key, clientCa },
 * );
 * ```
 */
export async function serveNodeHttps(
  options: ServeHttpOptions,
  tls: HttpTlsOptions,
): Promise<HttpServer> {
  const server = https.createServer({
    cert: tls.cert,
    key: tls.key,
    ca: tls.clientCa,
    requestCert: true,
    rejectUnauthorized: true,
  }, (req, res) => {
    // Handling a request: no head deadline until the response is done.
    waiting(req.socket, false);
    res.on("finish", () => waiting(req.socket, true));
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    void (async () => {
      let response: Response;
      try {
        response = await options.handler(toRequest(req, abort.signal));
      } catch (e) {
        response = internalError(e);
      }
      try {
        await send(res, response);
      } catch {
        res.destroy();
      }
    })();
  });
  // A request head must be complete within headTimeoutMs of the connection
  // opening or of the previous response (node:https on Deno does not honour
  // headersTimeout): a timer per connection, stopped while a request runs.
  const headTimeoutMs = options.headTimeoutMs ?? 10_000;
  const timers = new Map<Socket, ReturnType<typeof setTimeout>>();
  const waiting = (socket: Socket, yes: boolean) => {
    clearTimeout(timers.get(socket));
    timers.delete(socket);
    if (yes && !socket.destroyed) {
      timers.set(socket, setTimeout(() => socket.destroy(), headTimeoutMs));
    }
  };
  server.on("secureConnection", (socket: Socket) => {
    waiting(socket, true);
    socket.on("close", () => waiting(socket, false));
  });
  server.maxConnections = options.maxConnections ?? 1024;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  return {
    hostname: options.hostname,
    port,
    async shutdown(graceMs = 2000) {
      for (const timer of timers.values()) clearTimeout(timer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, graceMs);
        closed.then(() => clearTimeout(t));
      });
      await Promise.race([closed, timer]);
    },
  };
}
