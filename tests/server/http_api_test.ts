import { strict as assert } from "node:assert";
import { startCluster, type TestCluster, type TestNode } from "./cluster_helper.ts";

const te = new TextEncoder();

async function call(
  node: TestNode,
  method: string,
  path: string,
  body?: BodyInit,
  headers: Record<string, string> = {},
): Promise<
  { status: number; text: string; json: () => Record<string, unknown>; headers: Headers }
> {
  const res = await fetch(node.url + path, { method, body, headers });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text), headers: res.headers };
}

async function withCluster(n: number, fn: (c: TestCluster) => Promise<void>, api = {}) {
  const c = await startCluster(n, api);
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

Deno.test("single node: put, get, cas, delete, list", async () => {
  await withCluster(1, async (c) => {
    const n = c.nodes[0];
    let r = await call(n, "PUT", "/v1/kv/a%2Fb", "hello");
    assert.equal(r.status, 200, r.text);
    const index = r.json().index as number;
    assert.ok(index > 0);
    r = await call(n, "GET", "/v1/kv/a%2Fb");
    assert.equal(r.status, 200);
    assert.equal(r.text, "hello");
    assert.equal(r.headers.get("x-raft-index"), String(index));
    assert.equal(r.headers.get("content-type"), "application/octet-stream");
    for (const consistency of ["lease", "stale"]) {
      r = await call(n, "GET", `/v1/kv/a%2Fb?consistency=${consistency}`);
      assert.equal(r.text, "hello");
    }
    // cas: 0 = must not exist
    r = await call(n, "PUT", "/v1/kv/a%2Fb?cas=0", "x");
    assert.equal(r.status, 409);
    assert.equal(r.json().index, index);
    assert.match(r.json().error as string, /compare-and-set failed/);
    r = await call(n, "PUT", `/v1/kv/a%2Fb?cas=${index}`, "v2");
    assert.equal(r.status, 200);
    r = await call(n, "PUT", "/v1/kv/c?cas=0", "");
    assert.equal(r.status, 200);
    r = await call(n, "GET", "/v1/kv/c");
    assert.equal(r.status, 200);
    assert.equal(r.text, "");
    r = await call(n, "GET", "/v1/kv/?prefix=a");
    assert.deepEqual(r.json().keys, ["a/b"]);
    r = await call(n, "GET", "/v1/kv/");
    assert.deepEqual(r.json().keys, ["a/b", "c"]);
    r = await call(n, "GET", "/v1/kv?limit=1");
    assert.deepEqual(r.json().keys, ["a/b"]);
    r = await call(n, "DELETE", "/v1/kv/a%2Fb?cas=1");
    assert.equal(r.status, 409);
    r = await call(n, "DELETE", "/v1/kv/a%2Fb");
    assert.equal(r.status, 200);
    assert.ok((r.json().index as number) > index);
    r = await call(n, "GET", "/v1/kv/a%2Fb");
    assert.equal(r.status, 404);
    assert.match(r.json().error as string, /not found/);
    // Binary values survive exactly.
    const bin = new Uint8Array(256).map((_, i) => i);
    assert.equal((await call(n, "PUT", "/v1/kv/bin", bin)).status, 200);
    const res = await fetch(`${n.url}/v1/kv/bin`);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bin);
    // ...and stay intact after being served.
    assert.deepEqual(n.fsm.get("bin")?.value, bin);
  });
});

/** Where each field of `raft.stats()` appears on /metrics. */
const STAT_METRICS: Record<string, string[]> = {
  id: ["raftd_server_info"],
  state: ["raftd_state", "raftd_is_leader"],
  term: ["raftd_term"],
  leaderId: ["raftd_leader_info"],
  lastLogIndex: ["raftd_last_log_index"],
  lastLogTerm: ["raftd_last_log_term"],
  commitIndex: ["raftd_commit_index"],
  appliedIndex: ["raftd_applied_index"],
  lastSnapshotIndex: ["raftd_last_snapshot_index"],
  lastSnapshotTerm: ["raftd_last_snapshot_term"],
  lastSnapshotSize: ["raftd_last_snapshot_size_bytes"],
  lastContactMs: ["raftd_last_contact_seconds"],
  numPeers: ["raftd_peers"],
  configurationIndex: ["raftd_configuration_index"],
  fsyncs: ["raftd_fsyncs_total"],
  storeLogsSeconds: ["raftd_store_logs_seconds"],
  applySeconds: ["raftd_fsm_apply_seconds"],
  commitSeconds: ["raftd_commit_seconds"],
  messagesSent: ["raftd_rpc_sent_total"],
  messagesReceived: ["raftd_rpc_received_total"],
  snapshotsTaken: ["raftd_snapshots_taken_total"],
  snapshotsInstalled: ["raftd_snapshots_installed_total"],
  logEntriesInMemory: ["raftd_log_entries_in_memory"],
  logBytesInMemory: ["raftd_log_bytes_in_memory"],
  logReads: ["raftd_log_reads_total"],
  logEntriesRead: ["raftd_log_entries_read_total"],
};

Deno.test("/metrics carries every Raft stat, each with HELP and TYPE lines and its value", async () => {
  await withCluster(1, async (c) => {
    const n = c.nodes[0];
    for (let i = 0; i < 5; i++) await call(n, "PUT", `/v1/kv/k${i}`, "v");
    const text = (await call(n, "GET", "/metrics")).text;
    const stats = n.raft.stats();
    for (const key of Object.keys(stats)) {
      const names = STAT_METRICS[key];
      assert.ok(names, `raft.stats().${key} has no metric on /metrics`);
      for (const name of names) {
        assert.match(text, new RegExp(`^# HELP ${name} \\S`, "m"), `${name} HELP`);
        assert.match(text, new RegExp(`^# TYPE ${name} (gauge|counter|histogram)$`, "m"), name);
        const value = stats[key as keyof typeof stats];
        const none = typeof value === "object" && value !== null && Object.keys(value).length === 0;
        if (none) continue; // no message of any type yet: HELP and TYPE only
        assert.match(text, new RegExp(`^${name}(_bucket|_sum|_count)?(\\{[^}]*\\})? \\S+$`, "m"));
      }
    }
    assert.match(text, /^raftd_server_info\{id="n1"\} 1$/m);
    assert.match(text, /^raftd_leader_info\{id="n1"\} 1$/m);
    assert.match(
      text,
      new RegExp(`^raftd_log_entries_in_memory ${stats.logEntriesInMemory}$`, "m"),
    );
    assert.ok(stats.logEntriesInMemory > 0, "the log cache holds the new entries");
    assert.match(text, new RegExp(`^raftd_log_bytes_in_memory ${stats.logBytesInMemory}$`, "m"));
    assert.match(text, /^raftd_log_reads_total \d+$/m);
    assert.match(text, /^raftd_log_entries_read_total \d+$/m);
  });
});

Deno.test("single node: status, peers, metrics, health, snapshot", async () => {
  await withCluster(1, async (c) => {
    const n = c.nodes[0];
    await call(n, "PUT", "/v1/kv/k", "v");
    let r = await call(n, "GET", "/v1/status");
    assert.equal(r.status, 200);
    const s = r.json();
    assert.equal(s.id, "n1");
    assert.equal(s.state, "leader");
    assert.deepEqual(s.leader, { id: "n1", raft: "mem-n1:1", http: n.url });
    for (const f of ["term", "commitIndex", "appliedIndex", "lastIndex", "lastSnapshotIndex"]) {
      assert.equal(typeof s[f], "number", f);
    }
    assert.deepEqual(s.configuration, [{
      id: "n1",
      raft: "mem-n1:1",
      http: n.url,
      suffrage: "voter",
    }]);
    r = await call(n, "GET", "/v1/peers");
    assert.equal((r.json().servers as unknown[]).length, 1);
    r = await call(n, "GET", "/health");
    assert.equal(r.status, 200);
    r = await call(n, "POST", "/v1/snapshot");
    assert.equal(r.status, 200, r.text);
    assert.ok((r.json().index as number) > 0);
    r = await call(n, "GET", "/v1/status");
    assert.ok((r.json().lastSnapshotIndex as number) > 0);
    r = await call(n, "GET", "/metrics");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /text\/plain/);
    for (
      const m of [
        /^raftd_term \d+$/m,
        /^raftd_state\{state="leader"\} 1$/m,
        /^raftd_commit_index \d+$/m,
        /^raftd_applied_index \d+$/m,
        /^raftd_store_logs_seconds_bucket\{le="\+Inf"\} \d+$/m,
        /^raftd_snapshots_taken_total 1$/m,
        /^raftd_http_requests_total\{route="kv_put",code="200"\} 1$/m,
        /^raftd_kv_keys 1$/m,
      ]
    ) assert.match(r.text, m);
  });
});

Deno.test("bad input gets a clear 4xx, never a crash", async () => {
  await withCluster(1, async (c) => {
    const n = c.nodes[0];
    const cases: [string, string, BodyInit | undefined, number, RegExp][] = [
      ["GET", "/nope", undefined, 404, /no such route/],
      ["GET", "/v1/statusx", undefined, 404, /no such route/],
      ["POST", "/v1/status", undefined, 405, /not allowed/],
      ["PATCH", "/v1/kv/a", "x", 405, /allowed: GET, PUT, DELETE/],
      ["POST", "/v1/peers", "{not json", 400, /malformed JSON/],
      ["POST", "/v1/peers", "[1,2]", 400, /JSON object/],
      ["POST", "/v1/peers", '{"id":"n9"}', 400, /raft must be host:port/],
      ["POST", "/v1/peers", '{"id":"bad id","raft":"h:1"}', 400, /id must be/],
      ["POST", "/v1/peers", '{"id":"n9","raft":"h:1","voter":"yes"}', 400, /voter must be/],
      ["PUT", "/v1/kv/k?cas=abc", "x", 400, /cas must be/],
      ["GET", "/v1/kv/k?consistency=strong", undefined, 400, /consistency must be/],
      ["PUT", `/v1/kv/${"k".repeat(1025)}`, "x", 400, /key too long/],
      ["PUT", "/v1/kv/big", new Uint8Array(1024 * 1024 + 1), 413, /value too large/],
      ["PUT", "/v1/kv/%zz", "x", 400, /percent-encoding/],
      ["DELETE", "/v1/peers/n9", undefined, 404, /not in the configuration/],
      ["POST", "/v1/peers/n9/demote", undefined, 404, /not in the configuration/],
      ["POST", "/v1/leadership-transfer", '{"id":"n9"}', 404, /not in the configuration/],
      ["POST", "/v1/leadership-transfer", '{"id":"n1"}', 400, /already the leader/],
      ["PUT", "/v1/members/n2", '{"http":"not a url/x"}', 400, /http must be/],
    ];
    for (const [method, path, body, want, msg] of cases) {
      const r = await call(n, method, path, body);
      assert.equal(r.status, want, `${method} ${path}: ${r.text}`);
      assert.match(r.json().error as string, msg, `${method} ${path}`);
    }
    // The node is still fine.
    assert.equal((await call(n, "PUT", "/v1/kv/after", "ok")).status, 200);
  });
});

Deno.test("limits are configurable", async () => {
  await withCluster(1, async (c) => {
    const n = c.nodes[0];
    assert.equal((await call(n, "PUT", "/v1/kv/1234", "12345678")).status, 200);
    assert.equal((await call(n, "PUT", "/v1/kv/12345", "x")).status, 400);
    assert.equal((await call(n, "PUT", "/v1/kv/k", "123456789")).status, 413);
  }, { maxKeyBytes: 4, maxValueBytes: 8 });
});

Deno.test("bearer token is required everywhere but /health", async () => {
  await withCluster(2, async (c) => {
    const [a, b] = c.nodes;
    const auth = { authorization: "Bearer t0ken" };
    let r = await call(a, "GET", "/v1/status");
    assert.equal(r.status, 401);
    assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="raftd"');
    r = await call(a, "GET", "/metrics", undefined, { authorization: "Bearer wrong" });
    assert.equal(r.status, 401);
    assert.equal((await call(a, "GET", "/health")).status, 200);
    assert.equal((await call(a, "GET", "/v1/status", undefined, auth)).status, 200);
    // Forwarded requests carry the token to the leader.
    const follower = c.leader() === a ? b : a;
    r = await call(follower, "PUT", "/v1/kv/x", "1", auth);
    assert.equal(r.status, 200, r.text);
    r = await call(follower, "PUT", "/v1/kv/x", "1");
    assert.equal(r.status, 401);
  }, { token: "t0ken" });
});

Deno.test("three nodes: followers forward writes and linearizable reads", async () => {
  await withCluster(3, async (c) => {
    const leader = c.leader();
    const followers = c.nodes.filter((x) => x !== leader);
    for (const [i, f] of followers.entries()) {
      const r = await call(f, "PUT", `/v1/kv/k${i}`, `v${i}`);
      assert.equal(r.status, 200, r.text);
    }
    for (const node of c.nodes) {
      for (const [i] of followers.entries()) {
        const r = await call(node, "GET", `/v1/kv/k${i}`);
        assert.equal(r.status, 200, `${node.id}: ${r.text}`);
        assert.equal(r.text, `v${i}`);
      }
      const r = await call(node, "GET", "/v1/kv/?prefix=k&consistency=lease");
      assert.deepEqual(r.json().keys, ["k0", "k1"]);
    }
    // Stale reads are local and eventually see the write.
    await c.waitFor("stale read on followers", async () => {
      const r = await call(followers[0], "GET", "/v1/kv/k1?consistency=stale");
      return r.status === 200 && r.text === "v1";
    });
    // cas through a follower.
    let r = await call(followers[0], "PUT", "/v1/kv/k0?cas=0", "again");
    assert.equal(r.status, 409);
    // Status from a follower names the leader with its HTTP address.
    r = await call(followers[1], "GET", "/v1/status");
    const s = r.json();
    assert.equal(s.state, "follower");
    assert.deepEqual(s.leader, { id: leader.id, raft: `mem-${leader.id}:1`, http: leader.url });
    assert.equal((s.configuration as unknown[]).length, 3);
    // Metrics count forwards.
    r = await call(followers[0], "GET", "/metrics");
    assert.match(r.text, /^raftd_http_forwarded_total [1-9]\d*$/m);
    // Membership changes via a follower: demote, then remove.
    const victim = followers[1];
    r = await call(followers[0], "POST", `/v1/peers/${victim.id}/demote`);
    assert.equal(r.status, 200, r.text);
    await c.waitFor(
      "demoted",
      () =>
        leader.raft.getConfiguration().configuration.servers.find((x) => x.id === victim.id)
          ?.suffrage === "nonvoter",
    );
    r = await call(followers[0], "DELETE", `/v1/peers/${victim.id}`);
    assert.equal(r.status, 200, r.text);
    await c.waitFor("removed", () => leader.fsm.memberHttp(victim.id) === undefined);
    assert.equal(leader.raft.getConfiguration().configuration.servers.length, 2);
  });
});

Deno.test("leadership transfer through the API; no leader means 503 + Retry-After", async () => {
  await withCluster(3, async (c) => {
    const leader = c.leader();
    const target = c.nodes.find((x) => x !== leader)!;
    let r = await call(
      c.nodes.find((x) => x !== target)!,
      "POST",
      "/v1/leadership-transfer",
      JSON.stringify({ id: target.id }),
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().from, leader.id);
    await c.waitFor("the target leads", () => target.raft.state === "leader");
    // Isolate one follower: it loses the leader and must answer 503 without hanging.
    const lonely = c.nodes.find((x) => x !== target)!;
    c.network.isolate(`mem-${lonely.id}:1`);
    await c.waitFor(
      "the isolated node forgets the leader",
      () => lonely.raft.leader === undefined,
      5000,
    );
    r = await call(lonely, "PUT", "/v1/kv/x", "1");
    assert.equal(r.status, 503, r.text);
    assert.equal(r.headers.get("retry-after"), "1");
    assert.equal((await call(lonely, "GET", "/health")).status, 503);
    // Stale reads still work locally.
    assert.equal((await call(lonely, "GET", "/v1/kv/x?consistency=stale")).status, 404);
    c.network.heal();
    await c.waitFor("healed", async () => (await call(lonely, "GET", "/health")).status === 200);
  });
});

Deno.test("peers add through the API records the HTTP address; re-adding is a no-op", async () => {
  await withCluster(1, async (c) => {
    const n = c.nodes[0];
    // A nonvoter that does not exist on the network still gets added.
    let r = await call(
      n,
      "POST",
      "/v1/peers",
      JSON.stringify({ id: "n9", raft: "mem-n9:1", http: "127.0.0.1:9", voter: false }),
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().suffrage, "nonvoter");
    assert.equal(n.fsm.memberHttp("n9"), "http://127.0.0.1:9");
    r = await call(
      n,
      "POST",
      "/v1/peers",
      JSON.stringify({ id: "n9", raft: "mem-n9:1", http: "127.0.0.1:9", voter: false }),
    );
    assert.equal(r.status, 200);
    assert.equal(r.json().unchanged, true);
    r = await call(n, "GET", "/v1/peers");
    const servers = r.json().servers as { id: string; http: string | null }[];
    assert.deepEqual(servers.map((s) => [s.id, s.http]), [["n1", n.url], [
      "n9",
      "http://127.0.0.1:9",
    ]]);
    r = await call(n, "DELETE", "/v1/peers/n9");
    assert.equal(r.status, 200, r.text);
    assert.equal(n.fsm.memberHttp("n9"), undefined);
    assert.equal(te.encode("x").length, 1);
  });
});
