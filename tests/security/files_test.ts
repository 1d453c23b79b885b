/**
 * Security, files: a node's data is private to its owner (directories 0700,
 * files 0600, an existing data directory others could enter is closed), and
 * secrets others could read are refused with the command that fixes them.
 * Real raftd processes (source, and the binary when RAFTD_BIN is set).
 */

import { strict as assert } from "node:assert";
import { cli, e2eTest, FAST_FLAGS, freePort, http, Node, waitFor } from "../e2e/helpers.ts";
import { step } from "./_stranger.ts";

/** Every directory and file under `root` whose mode lets group or others in. */
async function exposed(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (path: string) => {
    const info = await Deno.lstat(path);
    if (info.isSymlink) return;
    if (((info.mode ?? 0) & 0o077) !== 0) {
      out.push(`${path} (${((info.mode ?? 0) & 0o777).toString(8)})`);
    }
    if (info.isDirectory) {
      for await (const e of Deno.readDir(path)) await visit(`${path}/${e.name}`);
    }
  };
  await visit(root);
  return out;
}

/** `raftd serve` that is expected to refuse to start. */
function serveRefused(dir: string, extra: string[]) {
  return cli([
    "serve",
    "--id",
    "n1",
    "--data",
    `${dir}/data`,
    "--raft",
    `127.0.0.1:${freePort()}`,
    "--http",
    `127.0.0.1:${freePort()}`,
    "--bootstrap",
    ...FAST_FLAGS,
    ...extra,
  ], { timeoutMs: 30_000 });
}

e2eTest({
  name: "security: data directories are 0700 and their files 0600",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-files-" });
    const node = new Node("n1", `${dir}/n1`);
    let ok = false;
    try {
      await step(t, "a new data directory", async () => {
        node.start(["--bootstrap"]);
        await waitFor("n1 healthy", () => node.healthy());
        for (let i = 0; i < 10; i++) {
          const r = await http(`${node.url}/v1/kv/k${i}`, { method: "PUT", body: "secret" });
          assert.equal(r.status, 200, r.text);
        }
        const snap = await http(`${node.url}/v1/snapshot`, { method: "POST" });
        assert.equal(snap.status, 200, snap.text);
        const snapshots = [];
        for await (const e of Deno.readDir(`${node.dataDir}/snapshots`)) snapshots.push(e.name);
        assert.ok(snapshots.length > 0, "a snapshot was written");
        assert.deepEqual(await exposed(node.dataDir), [], "nothing readable by others");
      });
      await step(t, "an existing data directory others could enter", async () => {
        await node.stop();
        await Deno.chmod(node.dataDir, 0o755);
        node.start();
        await waitFor("n1 healthy again", () => node.healthy());
        assert.equal((await Deno.stat(node.dataDir)).mode! & 0o777, 0o700);
      });
      ok = true;
    } finally {
      await node.stop();
      if (!ok) console.error(node.logs());
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

e2eTest({
  name: "security: key and token files others can read are refused, saying how to fix them",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-secrets-" });
    try {
      for (const flag of ["--cluster-key-file", "--api-token-file"]) {
        await step(t, `${flag} readable by others`, async () => {
          const file = `${dir}/${flag.slice(2)}`;
          await Deno.writeTextFile(file, "a secret value\n");
          await Deno.chmod(file, 0o644);
          const r = await serveRefused(dir, [flag, file]);
          assert.equal(r.code, 1, r.stderr);
          assert.match(
            r.stderr,
            new RegExp(`${flag} ${file} is accessible by others \\(mode 0644\\)`),
          );
          assert.match(r.stderr, new RegExp(`chmod 600 ${file}`));
        });
      }
      await step(t, "the CLI's --token-file readable by others", async () => {
        const file = `${dir}/client-token`;
        await Deno.writeTextFile(file, "a secret value\n");
        await Deno.chmod(file, 0o640);
        const r = await cli(["status", "--server", "http://127.0.0.1:9", "--token-file", file]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /is accessible by others \(mode 0640\).*chmod 600/);
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
