import assert from "node:assert/strict";
import { DataDirInUseError, LOCK_FILE, lockDataDir } from "../../src/server/data_dir_lock.ts";
import { IDENTITY_FILE, IdentityError, NodeIdentity } from "../../src/server/node_identity.ts";
import { newClusterId } from "../../src/transport/cluster_id.ts";

Deno.test("data dir lock: a second holder is refused, naming the pid; release frees it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lock = await lockDataDir(dir);
    assert.equal((await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).trim(), String(Deno.pid));
    const err = await lockDataDir(dir).then(() => undefined, (e) => e);
    assert.ok(err instanceof DataDirInUseError);
    assert.equal(err.holder, Deno.pid);
    assert.match(err.message, new RegExp(`in use by process ${Deno.pid} `));
    await lock.release();
    await lock.release(); // twice is fine
    const again = await lockDataDir(dir);
    await again.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data dir lock: a lock file left by a dead process does not block", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // What a kill -9 leaves: the file with a pid, and no lock held on it.
    await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, "999999\n");
    const lock = await lockDataDir(dir);
    assert.equal((await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).trim(), String(Deno.pid));
    await lock.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("identity: records the id once, refuses another, keeps the cluster id", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fresh = await NodeIdentity.open(dir);
    assert.equal(fresh.id, undefined);
    assert.equal(fresh.clusterId, undefined);
    await fresh.claim("n1");
    await fresh.claim("n1");
    await assert.rejects(fresh.claim("n2"), /belongs to server "n1", not "n2"/);

    const reopened = await NodeIdentity.open(dir);
    assert.equal(reopened.id, "n1");
    assert.equal(reopened.clusterId, undefined);
    await assert.rejects(reopened.claim("n2"), IdentityError);

    const id = newClusterId();
    const other = newClusterId();
    // Two connections of one cluster may adopt at once; another cluster is refused.
    await Promise.all([reopened.adopt(id), reopened.adopt(id)]);
    await assert.rejects(
      reopened.adopt(other),
      new RegExp(`belongs to cluster ${id}, not ${other}`),
    );
    assert.equal((await NodeIdentity.open(dir)).clusterId, id);

    // Starting a new cluster (bootstrap, restore) replaces it.
    await reopened.startCluster(other);
    assert.equal((await NodeIdentity.open(dir)).clusterId, other);
    await assert.rejects(reopened.startCluster("nope"), RangeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("identity: a damaged file is refused with what was expected", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [text, pattern] of [
        ["{not json", /is damaged: not valid JSON/],
        ['{"version":1,"id":"","clusterId":null}', /expected \{"version": 1, "id"/],
        ['{"version":2,"id":"n1","clusterId":null}', /expected \{"version": 1/],
        ['{"version":1,"id":"n1","clusterId":"xyz"}', /"clusterId": "<32 hex digits>" or null/],
      ] as const
    ) {
      await Deno.writeTextFile(`${dir}/${IDENTITY_FILE}`, text);
      await assert.rejects(NodeIdentity.open(dir), pattern, text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
