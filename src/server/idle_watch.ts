/**
 * A deadline for streamed bodies: a stream that may take any time as a
 * whole, but must not stall.
 *
 * @module
 */

/**
 * A pass-through stream that aborts `abort` (cancelling the request that
 * feeds it) with a `TimeoutError` saying `what` when no chunk arrives for
 * `idleMs`.
 *
 * @example
 * ```ts
 * import { idleWatch } from "./idle_watch.ts";
 * const abort = new AbortController();
 * const res = new Response("hello");
 * const text = await new Response(res.body!.pipeThrough(idleWatch(1000, abort, "stalled"))).text();
 * console.log(text); // "hello"
 * ```
 */
export function idleWatch(
  idleMs: number,
  abort: AbortController,
  what: string,
): TransformStream<Uint8Array, Uint8Array> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(new DOMException(what, "TimeoutError")), idleMs);
  };
  return new TransformStream({
    start: arm,
    transform(chunk, controller) {
      arm();
      controller.enqueue(chunk);
    },
    flush: () => clearTimeout(timer),
    cancel: () => {
      clearTimeout(timer);
      abort.abort();
    },
  });
}
