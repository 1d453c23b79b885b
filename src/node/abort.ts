/**
 * The one shape of an aborted operation: our {@linkcode AbortError}, with an
 * outcome, rather than the `DOMException` that `signal.throwIfAborted()`
 * throws.
 *
 * @module
 */

import { AbortError } from "../errors.ts";

/**
 * A `DOMException` named `AbortError` becomes our {@linkcode AbortError}
 * (outcome `"not_committed"`: it was thrown before anything was proposed);
 * anything else is returned as it is.
 *
 * @example
 * ```ts
 * import { asAbortError } from "./abort.ts";
 * const signal = AbortSignal.abort();
 * try {
 *   signal.throwIfAborted();
 * } catch (e) {
 *   console.log((asAbortError(e, "apply") as Error).name); // AbortError, with outcome "not_committed"
 * }
 * ```
 */
export function asAbortError(e: unknown, op: string): unknown {
  if (e instanceof DOMException && e.name === "AbortError") {
    return new AbortError(op, "not_committed", { cause: e });
  }
  return e;
}
