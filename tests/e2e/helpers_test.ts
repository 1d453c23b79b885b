/**
 * The end-to-end helpers themselves: ports are chosen free at run time and
 * bound later by a child process, so the helpers must cope with a port
 * handed out twice or taken meanwhile.
 */

import { strict as assert } from "node:assert";
import { e2eTest, freePort, Node, waitFor } from "./helpers.ts";

Deno.test("e2e helpers: freePort never hands out the same port twice", () => {
  // The kernel gives a just-released port again now and then: among 500
  // ports some would repeat (about 9 on average) without the helper's memory.
  const ports = Array.from({ length: 500 }, freePort);
  assert.equal(new Set(ports).size, ports.length);
});

e2eTest({
  name: "e2e helpers: a node whose port another process took before it bound starts on new ports",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "raftd-e2e-ports-" });
    // Learn the first port the node is given without reading it from the
    // node (that would make its ports final), as another process would.
    const listen = Deno.listen;
    const chosen: number[] = [];
    Deno.listen = ((options: Deno.TcpListenOptions) => {
      const l = listen(options);
      chosen.push((l.addr as Deno.NetAddr).port);
      return l;
    }) as typeof Deno.listen;
    let node: Node;
    try {
      node = new Node("n1", `${dir}/n1`);
    } finally {
      Deno.listen = listen;
    }
    // Take every port it was offered (freePort skips ports it handed out
    // before, so the node's are among them, not necessarily the first).
    const thieves: Deno.Listener[] = [];
    for (const port of chosen) {
      try {
        thieves.push(Deno.listen({ hostname: "127.0.0.1", port }));
      } catch {
        // in use by someone else already
      }
    }
    let ok = false;
    try {
      node.start(["--bootstrap"]);
      // Not asked for its health before: a request to a stolen port would hang.
      await waitFor("n1 to start again on new ports", () => /on new ports/.test(node.logs()));
      await waitFor("n1 healthy on new ports", () => node.healthy());
      assert.ok(!chosen.includes(node.raftPort) && !chosen.includes(node.httpPort));
      assert.match(node.logs(), /address already in use/);
      assert.equal((await node.status()).id, "n1");
      ok = true;
    } finally {
      for (const l of thieves) l.close();
      await node.stop("SIGKILL");
      if (!ok) console.error(node.logs());
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
