/**
 * A promise with its resolve and reject functions, like
 * `Promise.withResolvers()`, which Node.js 20 lacks (raftd runs there too).
 *
 * @module
 */

/** A promise and the functions that settle it. */
export interface Deferred<T> {
  /** Settles when `resolve` or `reject` is called. */
  promise: Promise<T>;
  /** Fulfils `promise` with `value`. */
  resolve: (value: T | PromiseLike<T>) => void;
  /** Rejects `promise` with `reason`. */
  reject: (reason?: unknown) => void;
}

/**
 * A new pending promise with the functions that settle it.
 *
 * @example
 * ```ts
 * import { deferred } from "./deferred.ts";
 * const { promise, resolve } = deferred<number>();
 * setTimeout(() => resolve(42), 0);
 * console.log(await promise); // 42
 * ```
 */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T | PromiseLike<T>) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
