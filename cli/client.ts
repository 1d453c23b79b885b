/**
 * The admin commands' client of a node's HTTP API: bearer token, clear
 * one-line errors, and retries while the cluster has no leader.
 *
 * @module
 */

import { fetchWithTls } from "../src/platform/http_client.ts";
import { describeNetError } from "../src/platform/net_errors.ts";
import { env, ExposedSecretError, readSecretFile, readTextFile } from "../src/platform/process.ts";
import { idleWatch } from "../src/server/idle_watch.ts";
import { CliError, type Parsed, serverUrl, str, UsageError } from "./args.ts";

/** How long one request may take before the client gives up, in ms. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Why a request got no answer, worded the same on Deno, Bun and the
 * compiled binary (their fetch errors differ).
 */
function unreachableReason(e: unknown, timeoutMs: number, https: boolean): string {
  if (e instanceof Error && e.name === "TimeoutError") {
    return `no answer within ${timeoutMs / 1000} s`;
  }
  const tls = tlsProblem(e);
  if (tls !== undefined) return tls;
  const reason = describeNetError(e);
  if (reason === "connection refused") return `${reason} (is raftd running there?)`;
  // A server refusing our certificate sometimes just cuts the connection.
  return https
    ? `${reason} (over HTTPS: check --ca-file, and give --cert-file and --key-file if the API ` +
      `requires a client certificate)`
    : reason;
}

/**
 * A failed TLS handshake, said the same on every runtime and with what to
 * do (Deno says "invalid peer certificate: UnknownIssuer" two causes deep,
 * Bun "self signed certificate in certificate chain").
 */
function tlsProblem(e: unknown): string | undefined {
  const text: string[] = [];
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    text.push(`${c.message} ${String((c as { code?: unknown }).code ?? "")}`);
  }
  const all = text.join(" ");
  if (
    /UnknownIssuer|self.signed|unable to (get|verify)|UNABLE_TO_VERIFY|CERT_UNTRUSTED/i.test(all)
  ) {
    return "its HTTPS certificate is not trusted (give the CA it chains to with --ca-file)";
  }
  if (/CertificateRequired|EPROTO|handshake failed|alert/i.test(all)) {
    return "the TLS handshake failed (if the API requires a client certificate, give " +
      "--cert-file and --key-file)";
  }
  if (/NotValidForName|altnames|hostname/i.test(all) && /cert/i.test(all)) {
    return "its HTTPS certificate is not valid for this host name";
  }
  return undefined;
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

  /** The fetch used (one trusting `--ca-file`, presenting `--cert-file`, when given). */
  readonly fetch: typeof fetch;

  /**
   * @param server API base URL.
   * @param token bearer token, if the API needs one.
   * @param retryMs how long to keep retrying 503 answers that are safe to retry.
   * @param timeoutMs how long an answer may take (default 30 s).
   * @param fetchFn the fetch to use (default the global one).
   */
  constructor(
    server: string,
    token?: string,
    retryMs = 5000,
    timeoutMs = REQUEST_TIMEOUT_MS,
    fetchFn: typeof fetch = fetch,
  ) {
    this.server = server;
    this.token = token;
    this.#retryMs = retryMs;
    this.#timeoutMs = timeoutMs;
    this.fetch = fetchFn;
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
        res = await this.fetch(new URL(path, this.server), {
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
          `cannot reach raftd at ${this.server}: ${
            unreachableReason(e, this.#timeoutMs, this.server.startsWith("https:"))
          }`,
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
  const fetchFn = await tlsFetch(command, p);
  return new ApiClient(server, token, undefined, undefined, fetchFn);
}

/** The fetch of `--ca-file`, `--cert-file` and `--key-file` (or their environment variables). */
async function tlsFetch(command: string, p: Parsed): Promise<typeof fetch> {
  const caFile = str(p, "ca-file") ?? env("RAFTD_CA_FILE");
  const certFile = str(p, "cert-file") ?? env("RAFTD_CERT_FILE");
  const keyFile = str(p, "key-file") ?? env("RAFTD_KEY_FILE");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError(`${command}: --cert-file and --key-file go together`);
  }
  const read = async (flag: string, file: string | undefined, secret = false) => {
    if (file === undefined) return undefined;
    try {
      return secret ? await readSecretFile(file, flag) : await readTextFile(file);
    } catch (e) {
      if (e instanceof ExposedSecretError) throw new CliError(`${command}: ${e.message}`);
      throw new CliError(`${command}: cannot read ${flag} ${file}: ${(e as Error).message}`);
    }
  };
  return fetchWithTls({
    ca: await read("--ca-file", caFile),
    cert: await read("--cert-file", certFile),
    key: await read("--key-file", keyFile, true),
  });
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
