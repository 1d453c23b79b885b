/**
 * Node.js runs raftd from the JavaScript `deno task build:node` produces:
 * builds it into a temporary directory, then forms a three-node cluster on
 * the machine's `node` with smoke.mjs. Ignored when there is no `node`.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

async function nodeVersion(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("node", { args: ["--version"], stdout: "piped" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

const version = await nodeVersion();

async function run(command: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(command, {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(180_000),
  }).output();
}

Deno.test({
  name: `node.js ${version ?? "(not installed)"}: a three-node cluster from the build:node output`,
  ignore: version === undefined,
  async fn() {
    const outdir = await Deno.makeTempDir({ prefix: "raftd-build-node-" });
    try {
      const decoder = new TextDecoder();
      const build = await run(Deno.execPath(), ["task", "build:node", "--outdir", outdir]);
      assert.ok(build.success, `build:node failed: ${decoder.decode(build.stderr)}`);
      const smoke = await run("node", ["tests/nodejs/smoke.mjs", outdir]);
      const stdout = decoder.decode(smoke.stdout);
      const stderr = decoder.decode(smoke.stderr);
      assert.ok(smoke.success, `node failed (code ${smoke.code}):\n${stdout}\n${stderr}`);
      assert.match(stdout, /^ok runtime=node nodes=3 applied=100$/m);
      // Nothing left open for the garbage collector to close (file handles, sockets).
      assert.doesNotMatch(stderr, /Warning/, stderr);
    } finally {
      await Deno.remove(outdir, { recursive: true });
    }
  },
});
