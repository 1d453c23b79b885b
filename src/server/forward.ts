/**
 * Forwarding a request from a follower to the leader's HTTP API, so clients
 * can talk to any node.
 *
 * @module
 */

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
const REQUEST_HEADERS = ["authorization", "content-type", "accept", "user-agent"];
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
): Promise<Response> {
  const headers = new Headers();
  for (const name of REQUEST_HEADERS) {
    const v = req.headers.get(name);
    if (v !== null) headers.set(name, v);
  }
  headers.set(FORWARDED_HEADER, selfId);
  const target = new URL(url.pathname + url.search, baseUrl);
  const res = await fetchFn(target, {
    method: req.method,
    headers,
    body: body && req.method !== "GET" && req.method !== "HEAD"
      ? body as Uint8Array<ArrayBuffer>
      : undefined,
    redirect: "manual",
    signal: AbortSignal.timeout(timeoutMs),
  });
  const out = new Headers();
  for (const [name, value] of res.headers) {
    if (RESPONSE_HEADERS.includes(name) || name.startsWith("x-raft")) out.set(name, value);
  }
  // Read fully so a leader that dies mid-body becomes a clean error here.
  const bytes = new Uint8Array(await res.arrayBuffer());
  return new Response(bytes, { status: res.status, headers: out });
}
