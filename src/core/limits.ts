/**
 * Ceilings on terms and log indexes, and how far one message may move a
 * node's term.
 *
 * Terms and indexes are JavaScript numbers, exact only up to 2^53. A peer's
 * terms and indexes are refused above {@linkcode MAX_TERM} and
 * {@linkcode MAX_INDEX} (far below 2^53), and a node never campaigns past
 * `MAX_TERM`. A term that high is out of reach of any real cluster (2^50
 * elections), but a forged message could claim it and leave every node at a
 * term it can never leave by election. So a node adopts a higher term from a
 * message only up to {@linkcode MAX_TERM_STEP} above the larger of its own
 * term and {@linkcode FREE_TERM_LIMIT} ({@linkcode mayAdoptTerm}): a new or
 * lagging node still catches up with any real cluster at once, and forging
 * the cluster to the ceiling takes a billion messages (a cluster key stops
 * the first one).
 *
 * @example
 * ```ts
 * import { MAX_TERM, mayAdoptTerm } from "./limits.ts";
 * console.log(mayAdoptTerm(0, 7), mayAdoptTerm(3, MAX_TERM)); // true false
 * ```
 *
 * @module
 */

/** Largest term a node ever holds or accepts on the wire: 2^50. */
export const MAX_TERM: number = 2 ** 50;

/** Largest log index a node accepts on the wire or appends: 2^50. */
export const MAX_INDEX: number = 2 ** 50;

/** Below this term (2^40) a node adopts a peer's higher term however far it jumps. */
export const FREE_TERM_LIMIT: number = 2 ** 40;

/** Beyond {@linkcode FREE_TERM_LIMIT}, one message raises a node's term by at most 2^20. */
export const MAX_TERM_STEP: number = 2 ** 20;

/**
 * Whether a node at term `current` may adopt the higher term `offered` from
 * a message.
 *
 * @example
 * ```ts
 * import { FREE_TERM_LIMIT, MAX_TERM_STEP, mayAdoptTerm } from "./limits.ts";
 * console.log(mayAdoptTerm(1, FREE_TERM_LIMIT + MAX_TERM_STEP)); // true
 * console.log(mayAdoptTerm(1, FREE_TERM_LIMIT + MAX_TERM_STEP + 1)); // false
 * ```
 */
export function mayAdoptTerm(current: number, offered: number): boolean {
  return offered <= MAX_TERM && offered <= Math.max(current, FREE_TERM_LIMIT) + MAX_TERM_STEP;
}
