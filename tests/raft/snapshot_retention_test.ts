/**
 * `retainSnapshots` is honoured by the node, whatever its snapshot store
 * would keep on its own (issue 11, defect 5: it was validated, never read).
 */

import assert from "node:assert/strict";
import { bytes, TestCluster } from "./_cluster.ts";

for (const retain of [1, 3]) {
  Deno.test(`retainSnapshots: ${retain} keeps the newest ${retain} snapshots`, async () => {
    const c = new TestCluster({ retainSnapshots: retain, snapshotThreshold: 1_000_000 });
    try {
      await c.bootstrap(["n1"]);
      const n1 = c.nodes.get("n1")!;
      const taken: number[] = [];
      for (let i = 0; i < retain + 3; i++) {
        await n1.raft.apply(bytes(`v${i}`));
        taken.push((await n1.raft.snapshot()).index);
      }
      await c.waitFor(
        `${retain} snapshots in the store`,
        async () => (await n1.snapshotStore.list()).length === retain,
      );
      const kept = (await n1.snapshotStore.list()).map((s) => s.index);
      assert.deepEqual(kept, taken.slice(-retain).reverse(), "the newest are kept");
    } finally {
      await c.shutdown();
    }
  });
}
