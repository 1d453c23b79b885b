/**
 * Build `dist/raftd`, a single self-contained executable, with
 * `bun build --compile` (Bun from npm), then check that it runs.
 *
 * `deno compile` would do the same where it can download its runtime
 * (`deno compile -A --output dist/raftd cli/main.ts`); here it cannot, so Bun
 * builds the binary. Bun resolves the npm dependencies from `node_modules/`,
 * which `deno install --node-modules-dir=auto` creates from deno.json.
 *
 * Usage: `deno run -A cli/compile.ts [--outfile dist/raftd] [--target bun-linux-x64]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { args, execPath, exit, spawn, writeStderr, writeStdout } from "../src/platform/process.ts";

/** The Bun that builds: from npm, so nothing needs installing by hand. */
export const BUN = "bun@1.4.4";

/**
 * Run `command` to completion; resolves with its standard output, rejects
 * naming `what` when it fails.
 *
 * @example
 * ```ts ignore
 * import { run } from "./compile.ts";
 * console.log(await run("npx", ["-y", "bun@1.4.4", "--version"], "bun --version"));
 * ```
 */
export async function run(command: string, argv: string[], what: string): Promise<string> {
  const child = spawn(command, argv, { stdout: "piped", stderr: "inherit" });
  const out = child.stdout ? await new Response(child.stdout).text() : "";
  const status = await child.status;
  if (!status.success) throw new Error(`${what} failed (exit ${status.code ?? status.signal})`);
  return out;
}

/**
 * Put the npm dependencies pinned in deno.json/deno.lock into `node_modules/`,
 * where `bun build` looks for them.
 *
 * @example
 * ```ts ignore
 * import { installNpmDependencies } from "./compile.ts";
 * await installNpmDependencies("build");
 * ```
 */
export async function installNpmDependencies(what: string): Promise<void> {
  writeStderr(`${what}: installing npm dependencies into node_modules/ for Bun\n`);
  await run(execPath(), ["install", "--node-modules-dir=auto", "--quiet"], "deno install");
}

/**
 * Build the executable and verify `--version`; returns its output.
 *
 * @example
 * ```ts ignore
 * import { compile } from "./compile.ts";
 * await compile({ outfile: "dist/raftd" });
 * ```
 */
export async function compile(options: { outfile: string; target?: string }): Promise<string> {
  const root = new URL("..", import.meta.url).pathname;
  await installNpmDependencies("compile");
  writeStderr(`compile: bun build --compile → ${options.outfile}\n`);
  await run("npx", [
    "-y",
    BUN,
    "build",
    "--compile",
    ...(options.target ? [`--target=${options.target}`] : []),
    `${root}cli/main.ts`,
    "--outfile",
    options.outfile,
  ], "bun build");
  const version = (await run(options.outfile, ["--version"], `${options.outfile} --version`))
    .trim();
  if (!/^raftd \S+ \(bun\)$/.test(version)) {
    throw new Error(`${options.outfile} --version printed ${JSON.stringify(version)}`);
  }
  return version;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: args(),
    options: { outfile: { type: "string" }, target: { type: "string" } },
    strict: true,
  });
  try {
    const version = await compile({
      outfile: values.outfile ?? "dist/raftd",
      target: values.target,
    });
    writeStdout(`compile: ok: ${values.outfile ?? "dist/raftd"} → ${version}\n`);
  } catch (e) {
    writeStderr(`error: compile: ${(e as Error).message}\n`);
    exit(1);
  }
}
