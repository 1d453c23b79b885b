/**
 * The cluster's secrets in a data directory, and joining with a join token.
 *
 * `DIR/cluster.key` (the Raft ports' shared secret) and `DIR/api.token` (the
 * API's bearer token) are text files private to their owner (0600). A
 * bootstrap that needs them generates them; a server joining with a join
 * token fetches them from a member; a restart finds them.
 *
 * The join token is derived from the cluster key: `raftd-join-1.` followed by
 * HMAC-SHA256(key, "raftd join token v1"), base64url. Any member can thus
 * check it, and holding it is as good as holding the key (it gets the key).
 * The exchange never sends the token: the joiner proves it holds it
 * (`proof = HMAC(J, "raftd-join-request" id nonce)`), and the member answers
 * with the secrets sealed by AES-256-GCM under `HMAC(J, "raftd-join-response"
 * nonce)` (the id as associated data). An eavesdropper learns nothing, a
 * replayed request gets an answer it cannot open, and a joiner knows the
 * answer came from a holder of the key. Over plain HTTP the API token used
 * afterwards still travels in clear text: use HTTPS on untrusted networks.
 *
 * @module
 */

import { defaultFileSystem } from "../platform/fs.ts";
import { readSecretFile, writePrivateFile } from "../platform/process.ts";
import { importClusterKey } from "../transport/handshake.ts";

/** File of the cluster key in a data directory. */
export const CLUSTER_KEY_FILE = "cluster.key";
/** File of the API token in a data directory. */
export const API_TOKEN_FILE = "api.token";

const JOIN_TOKEN_PREFIX = "raftd-join-1.";
const encoder = new TextEncoder();

/**
 * What a server needs to take part in a cluster: the cluster key and the API
 * token, as the text of their files.
 *
 * @example
 * ```ts
 * import type { ClusterSecrets } from "./secrets.ts";
 * const s: ClusterSecrets = { clusterKey: "K2tY...", apiToken: "q9Vf..." };
 * ```
 */
export interface ClusterSecrets {
  /** The cluster key (its bytes are the UTF-8 of this text). */
  clusterKey?: string;
  /** The API's bearer token. */
  apiToken?: string;
}

/**
 * `bytes` as base64url text, without padding.
 *
 * @example
 * ```ts
 * import { base64url } from "./secrets.ts";
 * console.log(base64url(new Uint8Array([251, 255]))); // "-_8"
 * ```
 */
export function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64url(text: string, what: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) {
    throw new RangeError(
      `${what} must be base64url text, got ${JSON.stringify(text.slice(0, 40))}`,
    );
  }
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * A new random secret as text: 32 random bytes, base64url.
 *
 * @example
 * ```ts
 * import { randomSecret } from "./secrets.ts";
 * console.log(randomSecret().length); // 43
 * ```
 */
export function randomSecret(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function readIfPresent(path: string, what: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readSecretFile(path, what);
  } catch (e) {
    if (defaultFileSystem().isNotFound(e)) return undefined;
    throw e;
  }
  const trimmed = text.trim();
  if (trimmed === "") throw new Error(`${what} ${path} is empty`);
  return trimmed;
}

/**
 * The secrets stored in data directory `dir` (each undefined when its file
 * is missing). Throws when a file is readable by others or empty.
 *
 * @example
 * ```ts ignore
 * import { loadSecrets } from "./secrets.ts";
 * const { clusterKey, apiToken } = await loadSecrets("/var/lib/raftd");
 * ```
 */
export async function loadSecrets(dir: string): Promise<ClusterSecrets> {
  return {
    clusterKey: await readIfPresent(`${dir}/${CLUSTER_KEY_FILE}`, "the cluster key"),
    apiToken: await readIfPresent(`${dir}/${API_TOKEN_FILE}`, "the API token"),
  };
}

/**
 * Writes `secrets` into data directory `dir` (mode 0600), each that is set.
 *
 * @example
 * ```ts ignore
 * import { randomSecret, storeSecrets } from "./secrets.ts";
 * await storeSecrets("/var/lib/raftd", { clusterKey: randomSecret(), apiToken: randomSecret() });
 * ```
 */
export async function storeSecrets(dir: string, secrets: ClusterSecrets): Promise<void> {
  if (secrets.clusterKey !== undefined) {
    await writePrivateFile(`${dir}/${CLUSTER_KEY_FILE}`, `${secrets.clusterKey}\n`);
  }
  if (secrets.apiToken !== undefined) {
    await writePrivateFile(`${dir}/${API_TOKEN_FILE}`, `${secrets.apiToken}\n`);
  }
}

async function hmac(secret: Uint8Array, ...parts: string[]): Promise<Uint8Array<ArrayBuffer>> {
  const key = await importClusterKey(secret);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(parts.join("\n"))));
}

/**
 * The join token of the cluster whose key is `clusterKey` (the key file's text).
 *
 * @example
 * ```ts
 * import { joinTokenFor } from "./secrets.ts";
 * console.log((await joinTokenFor("a cluster key")).startsWith("raftd-join-1.")); // true
 * ```
 */
export async function joinTokenFor(clusterKey: string): Promise<string> {
  return JOIN_TOKEN_PREFIX + base64url(await joinSecret(clusterKey));
}

async function joinSecret(clusterKey: string): Promise<Uint8Array<ArrayBuffer>> {
  return await hmac(encoder.encode(clusterKey), "raftd join token v1");
}

function secretOfToken(token: string): Uint8Array<ArrayBuffer> {
  const t = token.trim();
  if (!t.startsWith(JOIN_TOKEN_PREFIX)) {
    throw new RangeError(
      `a join token starts with ${JOIN_TOKEN_PREFIX}, got ${JSON.stringify(t.slice(0, 16))}...`,
    );
  }
  const secret = fromBase64url(t.slice(JOIN_TOKEN_PREFIX.length), "a join token");
  if (secret.length !== 32) {
    throw new RangeError(`a join token holds 32 bytes, this one ${secret.length}`);
  }
  return secret;
}

async function responseKey(secret: Uint8Array, nonce: string): Promise<CryptoKey> {
  const raw = await hmac(secret, "raftd-join-response", nonce);
  return await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** The body of a join request (`POST /v1/join`). */
export interface JoinRequest {
  /** The joining server's id. */
  id: string;
  /** 16 random bytes, base64url. */
  nonce: string;
  /** HMAC(J, "raftd-join-request", id, nonce), base64url. */
  proof: string;
}

/** The body of a join answer: the secrets, sealed. */
export interface SealedSecrets {
  /** AES-GCM nonce, base64url. */
  iv: string;
  /** The sealed JSON of {@linkcode ClusterSecrets} (plus `clusterId`), base64url. */
  sealed: string;
}

/**
 * A join request for server `id` holding `joinToken`.
 *
 * @example
 * ```ts
 * import { joinRequest, joinTokenFor } from "./secrets.ts";
 * const request = await joinRequest(await joinTokenFor("k"), "n2");
 * console.log(request.id); // "n2"
 * ```
 */
export async function joinRequest(joinToken: string, id: string): Promise<JoinRequest> {
  const secret = secretOfToken(joinToken);
  const nonce = base64url(crypto.getRandomValues(new Uint8Array(16)));
  return { id, nonce, proof: base64url(await hmac(secret, "raftd-join-request", id, nonce)) };
}

/**
 * The member's side: checks `request` against this cluster's key and seals
 * `secrets` for the joiner; undefined when the proof is wrong (another
 * cluster's token, or none).
 *
 * @example
 * ```ts
 * import { joinRequest, joinTokenFor, openSecrets, sealSecrets } from "./secrets.ts";
 * const request = await joinRequest(await joinTokenFor("k"), "n2");
 * const sealed = await sealSecrets("k", request, { clusterKey: "k", apiToken: "t" });
 * console.log((await openSecrets(await joinTokenFor("k"), request, sealed!)).apiToken); // "t"
 * ```
 */
export async function sealSecrets(
  clusterKey: string,
  request: JoinRequest,
  secrets: ClusterSecrets & { clusterId?: string },
): Promise<SealedSecrets | undefined> {
  const secret = await joinSecret(clusterKey);
  const proof = fromBase64url(request.proof, "proof");
  const ok = await crypto.subtle.verify(
    "HMAC",
    await importClusterKey(secret),
    proof,
    encoder.encode(["raftd-join-request", request.id, request.nonce].join("\n")),
  );
  if (!ok) return undefined;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(request.id) },
    await responseKey(secret, request.nonce),
    encoder.encode(JSON.stringify(secrets)),
  );
  return { iv: base64url(iv), sealed: base64url(new Uint8Array(sealed)) };
}

/**
 * The joiner's side: opens the member's answer to `request`. Throws when it
 * was not sealed with this join token (a server that does not hold the key).
 *
 * @example
 * ```ts ignore
 * import { openSecrets } from "./secrets.ts";
 * const { clusterKey, apiToken } = await openSecrets(token, request, await res.json());
 * ```
 */
export async function openSecrets(
  joinToken: string,
  request: JoinRequest,
  answer: SealedSecrets,
): Promise<ClusterSecrets & { clusterId?: string }> {
  const secret = secretOfToken(joinToken);
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: fromBase64url(answer.iv, "iv"),
        additionalData: encoder.encode(request.id),
      },
      await responseKey(secret, request.nonce),
      fromBase64url(answer.sealed, "sealed"),
    );
  } catch {
    throw new Error(
      "the answer to the join request was not sealed with this join token: " +
        "the server does not hold this cluster's key",
    );
  }
  const parsed = JSON.parse(new TextDecoder().decode(plain)) as Record<string, unknown>;
  const text = (v: unknown) => typeof v === "string" && v !== "" ? v : undefined;
  return {
    clusterKey: text(parsed.clusterKey),
    apiToken: text(parsed.apiToken),
    clusterId: text(parsed.clusterId),
  };
}

/**
 * Whether `host` (a bound address's host) is only reachable from this machine.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from "./secrets.ts";
 * console.log(isLoopbackHost("127.0.0.1"), isLoopbackHost("0.0.0.0")); // true false
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Asks the member at `via` (an API base URL) for the cluster's secrets with
 * `joinToken`, retrying while it cannot be reached or has no leader yet, up
 * to `timeoutMs` (default 120000). Throws at once when the member refuses
 * the token (another cluster's) or has no cluster key.
 *
 * @example
 * ```ts ignore
 * import { fetchJoinSecrets } from "./secrets.ts";
 * const secrets = await fetchJoinSecrets("http://10.0.0.1:8001", token, "n2");
 * ```
 */
export async function fetchJoinSecrets(
  via: string,
  joinToken: string,
  id: string,
  options: { fetch?: typeof fetch; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<ClusterSecrets & { clusterId?: string }> {
  secretOfToken(joinToken); // a malformed token fails before any request
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let delay = 250;
  let last = "";
  for (;;) {
    options.signal?.throwIfAborted();
    const request = await joinRequest(joinToken, id);
    try {
      const res = await (options.fetch ?? fetch)(new URL("/v1/join", via), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(request),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      if (res.ok) return await openSecrets(joinToken, request, JSON.parse(text));
      let reason = text.slice(0, 300);
      try {
        reason = (JSON.parse(text) as { error?: string }).error ?? reason;
      } catch {
        // not JSON
      }
      if (res.status === 403 || res.status === 404 || res.status === 400) {
        throw new Error(`${via} refused the join token: ${res.status} ${reason}`, {
          cause: "permanent",
        });
      }
      last = `${res.status} ${reason}`;
    } catch (e) {
      if (e instanceof Error && e.cause === "permanent") throw e;
      if (e instanceof Error && e.message.startsWith("the answer to the join request")) throw e;
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() + delay > deadline) {
      throw new Error(
        `could not get the cluster's secrets from ${via} in time; last error: ${last}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 3000);
  }
}
