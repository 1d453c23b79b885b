/**
 * Node.js runs raftd from the JavaScript `deno task build:node` produces:
 * builds it into a temporary directory, forms a three-node cluster on the
 * machine's `node` with smoke.mjs, and runs the CLI entry point there (the
 * admin commands work; `raftd serve` says it needs Deno or Bun). Ignored when
 * there is no `node`.
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

      // The CLI entry point runs as Node.js's main module, and fails the way it does elsewhere.
      const cli = (args: string[]) => run("node", [`${outdir}/cli/main.js`, ...args]);
      const version = await cli(["--version"]);
      const { version: expected } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
      assert.equal(decoder.decode(version.stdout), `raftd ${expected} (node)\n`);
      const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (closed.addr as Deno.NetAddr).port;
      closed.close();
      const status = await cli(["status", "--server", `http://127.0.0.1:${port}`]);
      assert.equal(status.code, 1);
      assert.equal(
        decoder.decode(status.stderr),
        `error: cannot reach raftd at http://127.0.0.1:${port}: ` +
          "connection refused (is raftd running there?)\n",
      );
      const serve = await cli(["serve", "--id", "n1", "--data", `${outdir}/data`, "--bootstrap"]);
      assert.equal(serve.code, 1);
      assert.match(decoder.decode(serve.stderr), /needs flock\(2\), which Node\.js does not offer/);
    } finally {
      await Deno.remove(outdir, { recursive: true });
    }
  },
});
