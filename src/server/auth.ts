/**
 * Bearer-token authentication of the API.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Compare two strings in time that depends only on `expected`'s length, so
 * the comparison does not leak how much of a guess was right.
 *
 * @example
 * ```ts
 * import { constantTimeEqual } from "./auth.ts";
 * console.log(constantTimeEqual("secret", "secret"), constantTimeEqual("secret", "guess")); // true false
 * ```
 */
export function constantTimeEqual(expected: string, given: string): boolean {
  const a = encoder.encode(expected);
  const b = encoder.encode(given);
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ (b[i % (b.length || 1)] ?? 0);
  return diff === 0;
}

/**
 * Checks `Authorization: Bearer <token>` headers against one token.
 *
 * @example
 * ```ts
 * import { BearerAuth } from "./auth.ts";
 * const auth = new BearerAuth("s3cret");
 * const req = new Request("http://x/v1/status", { headers: { authorization: "Bearer s3cret" } });
 * console.log(auth.check(req)); // true
 * ```
 */
export class BearerAuth {
  readonly #token: string;

  /** `token` must be non-empty (surrounding whitespace is ignored). */
  constructor(token: string) {
    const t = token.trim();
    if (t.length === 0) throw new RangeError("the API token must not be empty");
    this.#token = t;
  }

  /** True when the request carries the right bearer token. */
  check(req: Request): boolean {
    const header = req.headers.get("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    return constantTimeEqual(this.#token, m ? m[1] : "");
  }
}
