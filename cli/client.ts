/**
 * The admin commands' client of a node's HTTP API: bearer token, clear
 * one-line errors, and retries while the cluster has no leader.
 *
 * @module
 */

import { describeNetError } from "../src/platform/net_errors.ts";
import { env, ExposedSecretError, readSecretFile } from "../src/platform/process.ts";
import { idleWatch } from "../src/server/idle_watch.ts";
import { CliError, type Parsed, serverUrl, str } from "./args.ts";

/** How long one request may take before the client gives up, in ms. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Why a request got no answer, worded the same on Deno, Bun and the
 * compiled binary (their fetch errors differ).
 */
function unreachableReason(e: unknown, timeoutMs: number): string {
  if (e instanceof Error && e.name === "TimeoutError") {
    return `no answer within ${timeoutMs / 1000} s`;
  }
  const reason = describeNetError(e);
  return reason === "connection refused" ? `${reason} (is raftd running there?)` : reason;
}

/** An API error body. */
interface ErrorBody {
  error?: string;
  leader?: { id?: string; http?: string | null };
  outcome?: string;
}

/**
 * Talks to one node's API.
 *
 * @example
 * ```ts ignore
 * import { ApiClient } from "./client.ts";
 * const client = new ApiClient("http://127.0.0.1:8001");
 * console.log(await client.json("GET", "/v1/status"));
 * ```
 */
export class ApiClient {
  /** API base URL. */
  readonly server: string;
  /** Bearer token sent, if any. */
  readonly token: string | undefined;
  readonly #retryMs: number;
  readonly #timeoutMs: number;

  /**
   * @param server API base URL.
   * @param token bearer token, if the API needs one.
   * @param retryMs how long to keep retrying 503 answers that are safe to retry.
   * @param timeoutMs how long an answer may take (default 30 s).
   */
  constructor(server: string, token?: string, retryMs = 5000, timeoutMs = REQUEST_TIMEOUT_MS) {
    this.server = server;
    this.token = token;
    this.#retryMs = retryMs;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Send a request; non-2xx answers become a {@linkcode CliError} (unless
   * `accept` lists the status). The answer must arrive within 30 s; with
   * `stream`, its body may then take any time but must not stall for 60 s.
   */
  async request(
    method: string,
    path: string,
    body?: Uint8Array | string,
    accept: number[] = [],
    options: { stream?: boolean } = {},
  ): Promise<Response> {
    const deadline = Date.now() + this.#retryMs;
    for (;;) {
      let res: Response;
      // A streamed body outlives the answer's deadline, so that one must be cancellable.
      const abort = new AbortController();
      const timer = options.stream
        ? setTimeout(
          () => abort.abort(new DOMException("no answer in time", "TimeoutError")),
          this.#timeoutMs,
        )
        : undefined;
      try {
        res = await fetch(new URL(path, this.server), {
          method,
          headers: {
            ...(this.token !== undefined ? { authorization: `Bearer ${this.token}` } : {}),
            ...(typeof body === "string" ? { "content-type": "application/json" } : {}),
          },
          body: body as BodyInit | undefined,
          signal: options.stream ? abort.signal : AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (e) {
        clearTimeout(timer);
        throw new CliError(
          `cannot reach raftd at ${this.server}: ${unreachableReason(e, this.#timeoutMs)}`,
        );
      }
      clearTimeout(timer);
      if (options.stream && res.ok && res.body !== null) {
        const watched = res.body.pipeThrough(
          idleWatch(60_000, abort, `${this.server} sent nothing for 60 s`),
        );
        return new Response(watched, { status: res.status, headers: res.headers });
      }
      if (res.ok || accept.includes(res.status)) return res;
      const text = await res.text();
      let parsed: ErrorBody = {};
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { error: text.trim() || res.statusText };
      }
      // 503 without an outcome means nothing was done (no leader yet): safe to retry.
      if (res.status === 503 && parsed.outcome === undefined && Date.now() < deadline) {
        const after = Number(res.headers.get("retry-after") ?? "1");
        await new Promise((r) => setTimeout(r, Math.min(Math.max(after, 0.1), 1) * 1000));
        continue;
      }
      const leader = parsed.leader?.id
        ? ` (leader: ${parsed.leader.id}${parsed.leader.http ? ` at ${parsed.leader.http}` : ""})`
        : "";
      const outcome = parsed.outcome ? ` [outcome: ${parsed.outcome}]` : "";
      throw new CliError(
        `${method} ${path} failed: ${res.status} ${
          parsed.error ?? res.statusText
        }${leader}${outcome}`,
      );
    }
  }

  /** Send a request and parse the JSON answer. */
  async json<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<T> {
    const res = await this.request(
      method,
      path,
      body === undefined ? undefined : JSON.stringify(body),
    );
    return await res.json() as T;
  }
}

/**
 * The client for a parsed command line: `--server`/$RAFTD_SERVER and
 * `--token-file`/$RAFTD_TOKEN_FILE.
 *
 * @example
 * ```ts ignore
 * import { clientFor } from "./client.ts";
 * const client = await clientFor("raftd status", parsed);
 * ```
 */
export async function clientFor(command: string, p: Parsed): Promise<ApiClient> {
  const server = serverUrl(command, p);
  const tokenFile = str(p, "token-file") ?? env("RAFTD_TOKEN_FILE");
  let token: string | undefined;
  if (tokenFile !== undefined) {
    try {
      token = (await readSecretFile(tokenFile, "the token file")).trim();
    } catch (e) {
      if (e instanceof ExposedSecretError) throw new CliError(`${command}: ${e.message}`);
      throw new CliError(
        `${command}: cannot read the token file ${tokenFile}: ${(e as Error).message}`,
      );
    }
    if (token === "") throw new CliError(`${command}: the token file ${tokenFile} is empty`);
  }
  return new ApiClient(server, token);
}

/**
 * The API path of a key. The whole key is percent-encoded (`/` too), so
 * segments like `..` in a key are never resolved away by URL parsing.
 *
 * @example
 * ```ts
 * import { keyPath } from "./client.ts";
 * console.log(keyPath("a b/c")); // "/v1/kv/a%20b%2Fc"
 * ```
 */
export function keyPath(key: string): string {
  return `/v1/kv/${encodeURIComponent(key)}`;
}
