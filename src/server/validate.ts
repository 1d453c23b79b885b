/**
 * Validation of what clients send: keys, ids, addresses, query parameters.
 * Every failure is a 4xx {@linkcode HttpError} saying what was expected.
 *
 * @module
 */

import { HttpError } from "./errors.ts";

const encoder = new TextEncoder();

/**
 * Decode a percent-encoded path segment (400 when malformed).
 *
 * @example
 * ```ts
 * import { decodePath } from "./validate.ts";
 * console.log(decodePath("a%2Fb")); // "a/b"
 * ```
 */
export function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in path: ${JSON.stringify(raw)}`);
  }
}

/**
 * Check a key: non-empty, at most `maxBytes` UTF-8 bytes, no NUL.
 *
 * @example
 * ```ts
 * import { checkKey } from "./validate.ts";
 * checkKey("config/a", 1024);
 * ```
 */
export function checkKey(key: string, maxBytes: number): void {
  if (key.length === 0) throw new HttpError(400, "key must not be empty");
  // Cheap check first: a JS string has at most 3 UTF-8 bytes per code unit.
  if (key.length * 3 > maxBytes) {
    const n = encoder.encode(key).length;
    if (n > maxBytes) {
      throw new HttpError(400, `key too long: ${n} bytes, the limit is ${maxBytes}`);
    }
  }
  if (key.includes("\0")) throw new HttpError(400, "key must not contain NUL characters");
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Check a server id: 1–128 characters of `[A-Za-z0-9._-]`, starting alphanumeric.
 *
 * @example
 * ```ts
 * import { checkServerId } from "./validate.ts";
 * console.log(checkServerId("n1", "id")); // "n1"
 * ```
 */
export function checkServerId(value: unknown, field: string): string {
  if (typeof value !== "string" || !ID_RE.test(value)) {
    throw new HttpError(
      400,
      `${field} must be 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit, got ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}

const HOST_PORT_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

/**
 * Check a `host:port` address.
 *
 * @example
 * ```ts
 * import { checkHostPort } from "./validate.ts";
 * console.log(checkHostPort("127.0.0.1:7001", "raft")); // "127.0.0.1:7001"
 * ```
 */
export function checkHostPort(value: unknown, field: string): string {
  const m = typeof value === "string" ? HOST_PORT_RE.exec(value) : null;
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new HttpError(400, `${field} must be host:port, got ${JSON.stringify(value)}`);
  }
  return value as string;
}

/**
 * Normalize an HTTP API address to a base URL (`http://host:port`):
 * accepts `host:port` or an `http(s)://host:port` URL without a path.
 *
 * @example
 * ```ts
 * import { normalizeHttpUrl } from "./validate.ts";
 * console.log(normalizeHttpUrl("127.0.0.1:8001", "http")); // "http://127.0.0.1:8001"
 * ```
 */
export function normalizeHttpUrl(value: unknown, field: string): string {
  if (typeof value === "string") {
    const withScheme = /^https?:\/\//.test(value) ? value : `http://${value}`;
    try {
      const u = new URL(withScheme);
      if (
        u.port !== "" && (u.pathname === "/" || u.pathname === "") && u.search === "" &&
        u.username === "" && u.password === ""
      ) {
        return `${u.protocol}//${u.host}`;
      }
    } catch {
      // fall through to the error
    }
  }
  throw new HttpError(
    400,
    `${field} must be host:port or http://host:port, got ${JSON.stringify(value)}`,
  );
}

/**
 * Parse a non-negative integer query parameter; undefined when absent.
 *
 * @example
 * ```ts
 * import { intParam } from "./validate.ts";
 * console.log(intParam(new URL("http://x/?cas=4"), "cas")); // 4
 * ```
 */
export function intParam(url: URL, name: string): number | undefined {
  const all = url.searchParams.getAll(name);
  if (all.length === 0) return undefined;
  if (all.length > 1) {
    // Which one wins would be a guess; for ?cas= a wrong guess is a lost update.
    throw new HttpError(400, `query parameter ${name} given ${all.length} times, expected once`);
  }
  const raw = all[0];
  if (!/^\d{1,15}$/.test(raw)) {
    throw new HttpError(
      400,
      `query parameter ${name} must be a non-negative integer, got ${JSON.stringify(raw)}`,
    );
  }
  return Number(raw);
}

/**
 * Read consistency levels.
 *
 * @example
 * ```ts
 * import type { Consistency } from "./validate.ts";
 * const level: Consistency = "lease";
 * ```
 */
export type Consistency = "linearizable" | "lease" | "stale";

/**
 * Parse `?consistency=` (default linearizable).
 *
 * @example
 * ```ts
 * import { consistencyParam } from "./validate.ts";
 * console.log(consistencyParam(new URL("http://x/?consistency=stale"))); // "stale"
 * ```
 */
export function consistencyParam(url: URL): Consistency {
  const raw = url.searchParams.get("consistency") ?? "linearizable";
  if (raw === "linearizable" || raw === "lease" || raw === "stale") return raw;
  throw new HttpError(
    400,
    `query parameter consistency must be linearizable, lease or stale, got ${JSON.stringify(raw)}`,
  );
}
