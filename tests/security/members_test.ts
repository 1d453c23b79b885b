/**
 * Security, members own their addresses: followers forward requests (bearer
 * token included) to the leader's address in the member table, so with a
 * cluster key only a member itself, proving it holds the key, may set its
 * address; a token holder cannot point one elsewhere. Real raftd processes
 * (source, and the binary when RAFTD_BIN is set).
 */

import { strict as assert } from "node:assert";
import { e2eTest, http, leaderOf, type Node } from "../e2e/helpers.ts";
import { startThree } from "./_cluster.ts";
import { step } from "./_stranger.ts";

e2eTest({
  name: "security: an API token holder cannot point a member's HTTP address elsewhere",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-members-" });
    const token = "an API token, not the cluster key";
    await Deno.writeTextFile(`${dir}/key`, "the cluster key of this test", { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/token`, token, { mode: 0o600 });
    const auth = { authorization: `Bearer ${token}` };
    let nodes: Node[] = [];
    let ok = false;
    try {
      nodes = await startThree(
        dir,
        ["--cluster-key-file", `${dir}/key`, "--api-token-file", `${dir}/token`],
        token,
      );
      const leader = await leaderOf(nodes);
      const follower = nodes.find((n) => n !== leader)!;
      const httpOf = async (id: string) => {
        const s = await leader.status();
        return (s.configuration as { id: string; http: string | null }[]).find((c) => c.id === id)
          ?.http;
      };
      const before = await httpOf(leader.id);

      await step(t, "PUT /v1/members/{id} without the member's proof", async () => {
        for (const via of [leader, follower]) {
          const r = await http(`${via.url}/v1/members/${leader.id}`, {
            method: "PUT",
            headers: { ...auth, "content-type": "application/json" },
            body: JSON.stringify({ http: "http://127.0.0.1:9" }),
          });
          assert.equal(r.status, 403, r.text);
          assert.match(
            r.json<{ error: string }>().error,
            /only server "n\d" itself may set its HTTP address/,
          );
        }
        assert.equal(await httpOf(leader.id), before);
      });

      await step(t, "POST /v1/peers naming a member with another HTTP address", async () => {
        const r = await http(`${follower.url}/v1/peers`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({
            id: leader.id,
            raft: leader.raftAddress,
            http: "http://127.0.0.1:9",
          }),
        });
        assert.equal(r.status, 200, r.text);
        assert.equal(await httpOf(leader.id), before, "the address did not change");
      });

      await step(t, "followers still forward to the leader's own address", async () => {
        const r = await http(`${follower.url}/v1/kv/forwarded`, {
          method: "PUT",
          headers: auth,
          body: "1",
        });
        assert.equal(r.status, 200, r.text);
      });
      ok = true;
    } finally {
      for (const n of nodes) await n.stop();
      if (!ok) { for (const n of nodes) console.error(n.logs()); }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
