/**
 * Three-node raftd clusters for the security tests, on the end-to-end
 * helpers (source, and the binary when RAFTD_BIN is set).
 *
 * @module
 */

import { strict as assert } from "node:assert";
import { http, leaderOf, Node, waitFor, waitForCluster } from "../e2e/helpers.ts";

/** Whether the node's process is still running. */
export async function alive(node: Node): Promise<boolean> {
  const child = node.child;
  if (!child) return false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ended = await Promise.race([
    child.status.then(() => true),
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 50)),
  ]);
  clearTimeout(timer);
  return !ended;
}

/**
 * Starts n1 (bootstrap), n2 and n3 (join) and waits for a healthy cluster;
 * the test's own calls carry `token` when given.
 */
export async function startThree(
  dir: string,
  extra: string[] = [],
  token?: string,
): Promise<Node[]> {
  const nodes = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`, extra));
  for (const n of nodes) n.token = token;
  nodes[0].start(["--bootstrap"]);
  await waitFor("n1 healthy", () => nodes[0].healthy());
  nodes[1].start(["--join", nodes[0].url]);
  nodes[2].start(["--join", nodes[0].url]);
  await waitForCluster(nodes, ["n1", "n2", "n3"]);
  return nodes;
}

/** A write through any node succeeds within the deadline (a new election may be needed first). */
export async function writesCommit(nodes: Node[], key: string, token?: string): Promise<void> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  await waitFor(`a write of ${key} to commit`, async () => {
    const leader = await leaderOf(nodes);
    const r = await http(`${leader.url}/v1/kv/${key}`, { method: "PUT", body: key, headers });
    return r.status === 200;
  }, 20_000);
}

/** Asserts every node of `nodes` still runs. */
export async function allAlive(nodes: Node[]): Promise<void> {
  for (const n of nodes) assert.ok(await alive(n), `${n.id} stopped:\n${n.logs()}`);
}
