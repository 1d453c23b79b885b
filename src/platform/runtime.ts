/**
 * Which JavaScript runtime we are on. The platform layer is the only place
 * that asks; everything else goes through its interfaces.
 *
 * @module
 */

/** The runtimes raftd supports. */
export type RuntimeName = "deno" | "bun";

/**
 * The runtime this process runs on.
 *
 * @example
 * ```ts
 * import { runtimeName } from "./runtime.ts";
 * console.log(runtimeName); // "deno" under Deno
 * ```
 */
export const runtimeName: RuntimeName = "Bun" in globalThis ? "bun" : "deno";
