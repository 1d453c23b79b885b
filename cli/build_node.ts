/**
 * Build the JavaScript that Node.js runs: `mod.js` (the library),
 * `testing.js` and `cli/main.js`, ES modules with the npm dependencies
 * bundled in, made by `bun build --target node` (Bun from npm). Node.js runs
 * the same code as Bun (the `node:` side of `src/platform`).
 *
 * Nothing is polyfilled: the source avoids what Node.js 20 lacks
 * (`Promise.withResolvers`: `src/deferred.ts` stands in), so the same code
 * runs from JSR's npm packages too.
 *
 * Usage: `deno run -A cli/build_node.ts [--outdir dist/node]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { args, exit, writeStderr, writeStdout, writeTextFile } from "../src/platform/process.ts";
import { BUN, installNpmDependencies, run } from "./compile.ts";

/** The package's entry points, as `deno.json` exports them. */
const ENTRY_POINTS = ["mod.ts", "testing.ts", "cli/main.ts"];

/**
 * Build the Node.js modules into `outdir`; returns the files written.
 *
 * @example
 * ```ts ignore
 * import { buildNode } from "./build_node.ts";
 * await buildNode({ outdir: "dist/node" });
 * ```
 */
export async function buildNode(options: { outdir: string }): Promise<string> {
  const root = new URL("..", import.meta.url).pathname;
  await installNpmDependencies("build:node");
  writeStderr(`build:node: bun build --target node → ${options.outdir}\n`);
  const out = await run("npx", [
    "-y",
    BUN,
    "build",
    "--target=node",
    "--format=esm",
    // One copy of each class shared by the entry points (instanceof works across them).
    "--splitting",
    `--outdir=${options.outdir}`,
    ...ENTRY_POINTS.map((entry) => `${root}${entry}`),
  ], "bun build");
  // Node.js 20 reads .js as CommonJS unless the nearest package.json says otherwise.
  await writeTextFile(`${options.outdir}/package.json`, `{ "type": "module" }\n`);
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: args(),
    options: { outdir: { type: "string" } },
    strict: true,
  });
  const outdir = values.outdir ?? "dist/node";
  try {
    await buildNode({ outdir });
    writeStdout(`build:node: ok: ${outdir}/mod.js, ${outdir}/testing.js, ${outdir}/cli/main.js\n`);
  } catch (e) {
    writeStderr(`error: build:node: ${(e as Error).message}\n`);
    exit(1);
  }
}
