/**
 * Security, connection exhaustion on the Raft port: strangers holding
 * connections in their handshake, connections that go silent after it, and
 * frames that never end must neither keep peers out nor pile up memory.
 * Real raftd processes (source, and the binary when RAFTD_BIN is set).
 */

import { strict as assert } from "node:assert";
import * as nodeNet from "node:net";
import { FrameKind, writeFrameHeader } from "../../src/transport/frame.ts";
import { ConnectionPurpose } from "../../src/transport/handshake.ts";
import { e2eTest, http, leaderOf, type Node, sleep, waitFor } from "../e2e/helpers.ts";
import { allAlive, startThree, writesCommit } from "./_cluster.ts";
import { step, Stranger, view } from "./_stranger.ts";

/**
 * Keeps `count` silent connections open from `host` to `address`, opening a
 * new one whenever the node closes one, until `stop()`.
 */
function holdConnections(host: string, address: string, count: number): { stop(): void } {
  const [hostname, port] = [
    address.slice(0, address.lastIndexOf(":")),
    Number(address.split(":").pop()),
  ];
  let stopped = false;
  const sockets = new Set<nodeNet.Socket>();
  const open = () => {
    if (stopped) return;
    const s = nodeNet.connect({ host: hostname, port, localAddress: host });
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => {
      sockets.delete(s);
      // Back at once (after a breath, so a refusing node does not spin this loop).
      setTimeout(open, 5);
    });
  };
  for (let i = 0; i < count; i++) open();
  return {
    stop() {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
  };
}

/** Resident memory of a process, in bytes. */
async function rss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb * 1024;
}

e2eTest({
  name: "security: strangers on the Raft port cannot keep peers out or pile up memory",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-limits-" });
    let nodes: Node[] = [];
    let ok = false;
    try {
      nodes = await startThree(dir);
      const clusterId = (await view(nodes[0].url)).clusterId;

      await step(t, "a connection silent after its handshake is closed", async () => {
        const stranger = await Stranger.connect(nodes[0].raftAddress, { clusterId });
        // It reads the node's pings but never answers one.
        assert.ok(await stranger.closedWithin(15_000), "closed within 15 s");
        await stranger.close();
      });

      await step(t, "frames that never end do not pile up memory", async () => {
        const target = nodes[0];
        const before = await rss(target.child!.pid);
        const header = new Uint8Array(5);
        writeFrameHeader(header, 0, FrameKind.Message, 64 * 1024 * 1024 - 1);
        // One after the other: more than 8 handshakes at once from one host are refused.
        const strangers: Stranger[] = [];
        for (let i = 0; i < 12; i++) {
          strangers.push(
            await Stranger.connect(target.raftAddress, {
              id: `hog-${i}`,
              clusterId,
              purpose: ConnectionPurpose.Bulk,
            }),
          );
        }
        const block = new Uint8Array(1024 * 1024);
        let cutOff = 0;
        await Promise.all(strangers.map(async (s) => {
          try {
            await s.sendRaw(header);
            for (let mib = 0; mib < 63; mib++) await s.sendRaw(block);
            if (await s.closedWithin(5000)) cutOff++;
          } catch {
            cutOff++; // closed by the node while sending
          }
        }));
        await sleep(500);
        const grown = (await rss(target.child!.pid)) - before;
        for (const s of strangers) await s.close();
        await allAlive(nodes);
        assert.ok(cutOff > 0, "past the buffer budget, connections are cut off");
        assert.ok(
          grown < 800 * 1024 * 1024,
          `756 MiB of partial frames sent; the node grew by ${Math.round(grown / 2 ** 20)} MiB`,
        );
        await writesCommit(nodes, "after-hogs");
      });

      await step(
        t,
        "strangers holding handshake slots do not keep peers out after a leader loss",
        async () => {
          const leader = await leaderOf(nodes);
          const followers = nodes.filter((n) => n !== leader);
          const holders = followers.map((f) => holdConnections("127.0.0.2", f.raftAddress, 1100));
          try {
            await sleep(2000);
            // A peer (from another host than the strangers) still completes handshakes.
            for (const f of followers) {
              for (let attempt = 0; attempt < 5; attempt++) {
                const peer = await Stranger.connect(f.raftAddress, { id: "peer", clusterId });
                await peer.close();
              }
            }
            await leader.stop("SIGKILL");
            // The survivors may still have links to each other from an earlier
            // election: a restart makes one of them dial the other afresh.
            await followers[0].stop();
            followers[0].start();
            await waitFor("a new leader among the survivors", async () => {
              const l = await leaderOf(followers).catch(() => undefined);
              return l !== undefined;
            }, 20_000);
            const l = await leaderOf(followers);
            const r = await http(`${l.url}/v1/kv/after-leader-loss`, { method: "PUT", body: "1" });
            assert.equal(r.status, 200, r.text);
          } finally {
            for (const h of holders) h.stop();
          }
          leader.start();
          await waitFor(`${leader.id} back`, () => leader.healthy());
        },
      );
      ok = true;
    } finally {
      for (const n of nodes) await n.stop();
      if (!ok) { for (const n of nodes) console.error(n.logs()); }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
