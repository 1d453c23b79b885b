/**
 * A `fetch` that trusts a given CA and presents a client certificate, for
 * HTTPS APIs signed by a private CA or requiring mutual TLS: Deno's
 * `createHttpClient`, Bun's `tls` fetch option.
 *
 * @module
 */

import { runtimeName } from "./runtime.ts";

/**
 * TLS settings of a client: PEM text, not file names.
 *
 * @example
 * ```ts
 * import type { HttpClientTls } from "./http_client.ts";
 * const tls: HttpClientTls = { ca: "-----BEGIN CERTIFICATE-----..." };
 * ```
 */
export interface HttpClientTls {
  /** A CA the server's certificate may chain to (besides the system's roots). */
  ca?: string;
  /** Client certificate chain, for servers that require one. */
  cert?: string;
  /** Its private key. */
  key?: string;
}

/**
 * A `fetch` with these TLS settings (the plain global `fetch` when none is given).
 *
 * @throws {TypeError} When only one of `cert` and `key` is given.
 *
 * @example
 * ```ts
 * import { fetchWithTls } from "./http_client.ts";
 * const f = fetchWithTls({});
 * console.log(f === fetch); // true
 * ```
 */
export function fetchWithTls(tls: HttpClientTls): typeof fetch {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError("a client certificate needs both cert and key");
  }
  if (tls.ca === undefined && tls.cert === undefined) return fetch;
  if (runtimeName === "bun") {
    const options = {
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    };
    return ((input: RequestInfo | URL, init?: RequestInit) =>
      fetch(input, { ...init, tls: options } as RequestInit)) as typeof fetch;
  }
  const client = Deno.createHttpClient({
    ...(tls.ca !== undefined ? { caCerts: [tls.ca] } : {}),
    ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
  });
  return ((input: RequestInfo | URL, init?: RequestInit) =>
    fetch(input, { ...init, client } as RequestInit)) as typeof fetch;
}
