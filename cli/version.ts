/**
 * The raftd version, read from deno.json at build time.
 *
 * @module
 */

import meta from "../deno.json" with { type: "json" };

/**
 * The version of this raftd build.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * console.log(VERSION); // e.g. "0.1.0"
 * ```
 */
export const VERSION: string = meta.version;
