/**
 * Failover benchmark: three `raftd serve` processes with default timeouts
 * (heartbeat 100 ms, election timeout 1000 ms); kill -9 the leader and time
 * how long until another node reports itself leader, several rounds.
 * Prints one JSON line per round.
 *
 *   deno run -A bench/failover.ts [--rounds 5]
 *
 * @module
 */

import { benchArgs } from "./_args.ts";
import { leaderOf, Node, sleep, waitFor, waitForCluster } from "../tests/e2e/helpers.ts";

const { rounds } = benchArgs(
  "deno task bench:failover",
  "Failover: kill -9 the leader of three `raftd serve` and time until another leads.",
  { rounds: { type: "integer", default: 5, help: "rounds, one JSON line each" } },
);

const DEFAULTS = [
  "--heartbeat-interval",
  "100",
  "--election-timeout",
  "1000",
  "--log-level",
  "error",
];
const dir = await Deno.makeTempDir({ prefix: "raftd-failover-" });
const nodes = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`, DEFAULTS));
try {
  nodes[0].start(["--bootstrap"]);
  await waitFor("n1 healthy", () => nodes[0].healthy());
  nodes[1].start(["--join", nodes[0].url]);
  nodes[2].start(["--join", nodes[0].url]);
  await waitForCluster(nodes, ["n1", "n2", "n3"]);
  for (let round = 1; round <= rounds; round++) {
    const old = await leaderOf(nodes);
    await sleep(500);
    const killed = performance.now();
    await old.stop("SIGKILL");
    let took = 0;
    await waitFor("a new leader", async () => {
      for (const n of nodes) {
        if (n === old) continue;
        try {
          if ((await n.status()).state === "leader") {
            took = performance.now() - killed;
            return true;
          }
        } catch {
          // not answering yet
        }
      }
      return false;
    }, 15_000);
    console.log(JSON.stringify({
      bench: "failover",
      round,
      election_timeout_ms: 1000,
      new_leader_ms: Math.round(took),
    }));
    old.start();
    await waitForCluster(nodes, ["n1", "n2", "n3"]);
  }
} finally {
  await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
