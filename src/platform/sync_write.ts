/**
 * How large a file write may be and still be made synchronously (see
 * {@linkcode SYNC_WRITE_MAX_BYTES}). Its own module so that `fs.ts` and the
 * runtime implementations it picks from do not import each other.
 *
 * @module
 */

/**
 * Writes up to this many bytes are made with a synchronous `write(2)` on the
 * calling thread instead of an asynchronous one. Copying a few KiB into the
 * page cache takes microseconds; an asynchronous write goes through the
 * runtime's thread pool and back through the event loop, which measured
 * 75–180 µs per call here: a tenth to a third of a whole replicated commit at
 * concurrency 1. Larger writes stay asynchronous so that one big batch cannot
 * stall the event loop. (`fdatasync` always stays asynchronous: that is where
 * a slow or hung disk waits, and storage deadlines must keep running.)
 *
 * @example
 * ```ts
 * import { SYNC_WRITE_MAX_BYTES } from "./sync_write.ts";
 * console.log(SYNC_WRITE_MAX_BYTES); // 65536
 * ```
 */
export const SYNC_WRITE_MAX_BYTES = 64 * 1024;
