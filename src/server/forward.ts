/**
 * Forwarding a request from a follower to the leader's HTTP API, so clients
 * can talk to any node.
 *
 * @module
 */

import { idleWatch } from "./idle_watch.ts";
import { MEMBER_PROOF_HEADER } from "./member_proof.ts";

/**
 * Marks a forwarded request (value: the forwarding node's id) so it is never forwarded twice.
 *
 * @example
 * ```ts
 * import { FORWARDED_HEADER } from "./forward.ts";
 * const req = new Request("http://x/v1/kv/a", { headers: { [FORWARDED_HEADER]: "n2" } });
 * console.log(req.headers.has(FORWARDED_HEADER)); // true
 * ```
 */
export const FORWARDED_HEADER = "x-raftd-forwarded-by";

// Request headers that carry meaning to the leader; hop-by-hop ones are dropped.
const REQUEST_HEADERS = [
  "authorization",
  "content-type",
  "accept",
  "user-agent",
  MEMBER_PROOF_HEADER,
];
// Response headers worth passing back; content-length/encoding are recomputed.
const RESPONSE_HEADERS = ["content-type", "retry-after", "allow", "www-authenticate"];

/**
 * Send `req` (whose body was already read into `body`) to `baseUrl` with the
 * same method, path, query and authorization, and return the leader's
 * response. Throws when the leader cannot be reached.
 *
 * @example
 * ```ts ignore
 * import { forwardRequest } from "./forward.ts";
 * const res = await forwardRequest(req, new URL(req.url), body, "http://127.0.0.1:8001", "n2", 5000);
 * ```
 */
export async function forwardRequest(
  req: Request,
  url: URL,
  body: Uint8Array | undefined,
  baseUrl: string,
  selfId: string,
  timeoutMs: number,
  fetchFn: typeof fetch = fetch,
  options: ForwardOptions = {},
): Promise<Response> {
  const headers = new Headers();
  for (const name of REQUEST_HEADERS) {
    const v = req.headers.get(name);
    if (v !== null) headers.set(name, v);
  }
  headers.set(FORWARDED_HEADER, selfId);
  const target = new URL(url.pathname + url.search, baseUrl);
  // The deadline covers the answer's headers; a streamed body is then watched for stalls.
  const abort = new AbortController();
  const timer = setTimeout(
    () => abort.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")),
    timeoutMs,
  );
  let res: Response;
  try {
    res = await fetchFn(target, {
      method: req.method,
      headers,
      body: body && req.method !== "GET" && req.method !== "HEAD"
        ? body as Uint8Array<ArrayBuffer>
        : undefined,
      redirect: "manual",
      signal: abort.signal,
    });
  } catch (e) {
    clearTimeout(timer);
    throw e;
  }
  const out = new Headers();
  for (const [name, value] of res.headers) {
    if (RESPONSE_HEADERS.includes(name) || name.startsWith("x-raft")) out.set(name, value);
  }
  if (options.stream !== undefined && res.ok && res.body !== null) {
    clearTimeout(timer);
    out.set("content-type", res.headers.get("content-type") ?? "application/octet-stream");
    const disposition = res.headers.get("content-disposition");
    if (disposition !== null) out.set("content-disposition", disposition);
    const stalled = `the leader sent nothing for ${options.stream.idleMs} ms`;
    return new Response(res.body.pipeThrough(idleWatch(options.stream.idleMs, abort, stalled)), {
      status: res.status,
      headers: out,
    });
  }
  try {
    // Read fully so a leader that dies mid-body becomes a clean error here.
    const bytes = new Uint8Array(await res.arrayBuffer());
    return new Response(bytes, { status: res.status, headers: out });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Options of {@linkcode forwardRequest}.
 *
 * @example
 * ```ts
 * import type { ForwardOptions } from "./forward.ts";
 * const options: ForwardOptions = { stream: { idleMs: 30_000 } };
 * ```
 */
export interface ForwardOptions {
  /**
   * Pass a successful answer's body through as it arrives instead of reading
   * it whole (a backup is too large for memory); it is cut off when no byte
   * comes for `idleMs`.
   */
  stream?: { idleMs: number };
}
