/**
 * In-process raftd nodes for the API tests: real Raft, memory stores and
 * the memory transport, each with its HTTP API served on a free loopback port.
 *
 * @module
 */

import { Raft } from "../../src/raft.ts";
import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../../src/storage/mod.ts";
import { MemoryNetwork } from "../../src/transport/mod.ts";
import { serveHttp } from "../../src/platform/http.ts";
import type { HttpServer } from "../../src/platform/http.ts";
import { type ApiOptions, createApi } from "../../src/server/http_api.ts";
import { KvFsm, type KvResult } from "../../src/server/kv_fsm.ts";
import { MemberRegistrar } from "../../src/server/registrar.ts";

export interface TestNode {
  id: string;
  raft: Raft<KvResult>;
  fsm: KvFsm;
  url: string;
  server: HttpServer;
  registrar: MemberRegistrar;
}

export interface TestCluster {
  nodes: TestNode[];
  network: MemoryNetwork;
  leader(): TestNode;
  waitFor(what: string, ok: () => boolean | Promise<boolean>, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export const FAST = { heartbeatInterval: 20, electionTimeout: 150, snapshotInterval: 0 };

export async function waitFor(
  what: string,
  ok: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Start a cluster of `n` nodes. Every node's
 * HTTP address is registered before this resolves.
 */
export async function startCluster(
  n: number,
  api: Partial<Omit<ApiOptions, "raft" | "fsm" | "httpUrl">> = {},
): Promise<TestCluster> {
  const network = new MemoryNetwork();
  const nodes: TestNode[] = [];
  for (let i = 1; i <= n; i++) {
    const id = `n${i}`;
    const fsm = new KvFsm();
    const raft = await Raft.create<KvResult>({ id, ...FAST }, fsm, {
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: network.transport(`mem-${id}:1`),
    });
    let handler: (req: Request) => Promise<Response> = () =>
      Promise.resolve(new Response(null, { status: 503 }));
    const server = serveHttp({ hostname: "127.0.0.1", port: 0, handler: (r) => handler(r) });
    const url = `http://127.0.0.1:${server.port}`;
    handler = createApi({ raft, fsm, httpUrl: url, timeoutMs: 3000, ...api }).handler;
    const registrar = new MemberRegistrar({
      raft,
      fsm,
      httpUrl: url,
      token: api.token,
      intervalMs: 50,
    });
    nodes.push({ id, raft, fsm, url, server, registrar });
  }
  // Every node bootstraps with the same configuration (hashicorp style), so
  // each knows its peers' addresses from the start.
  const configuration = {
    servers: nodes.map((x) => ({ id: x.id, address: `mem-${x.id}:1`, suffrage: "voter" as const })),
  };
  for (const x of nodes) await x.raft.bootstrapCluster(configuration);
  for (const x of nodes) x.registrar.start();
  const cluster: TestCluster = {
    nodes,
    network,
    leader() {
      const l = nodes.find((x) => x.raft.state === "leader");
      if (!l) throw new Error("no leader");
      return l;
    },
    waitFor,
    async close() {
      for (const x of nodes) {
        x.registrar.stop();
        await x.server.shutdown(200);
        await x.raft.shutdown().catch(() => {});
      }
    },
  };
  try {
    await waitFor(
      "a leader and every HTTP address registered everywhere",
      () =>
        nodes.some((x) => x.raft.state === "leader") &&
        nodes.every((x) => nodes.every((y) => x.fsm.memberHttp(y.id) === y.url)),
    );
  } catch (e) {
    await cluster.close();
    throw e;
  }
  return cluster;
}
