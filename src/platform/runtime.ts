/**
 * Which JavaScript runtime we are on. The platform layer is the only place
 * that asks; everything else goes through its interfaces.
 *
 * @module
 */

/** The runtimes raftd supports. Bun and Node.js share the `node:` implementations. */
export type RuntimeName = "deno" | "bun" | "node";

/**
 * The runtime this process runs on.
 *
 * @example
 * ```ts
 * import { runtimeName } from "./runtime.ts";
 * console.log(runtimeName); // "deno" under Deno
 * ```
 */
export const runtimeName: RuntimeName = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";
