import { strict as assert } from "node:assert";
import { startCluster, type TestCluster, type TestNode } from "./cluster_helper.ts";
import { serverUrl } from "../../cli/args.ts";
import { startDaemon } from "../../src/server/daemon.ts";

async function call(
  node: TestNode,
  method: string,
  path: string,
  body?: BodyInit,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; json: () => Record<string, unknown> }> {
  const res = await fetch(node.url + path, { method, body, headers });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

async function withCluster(n: number, fn: (c: TestCluster) => Promise<void>, api = {}) {
  const c = await startCluster(n, api);
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

Deno.test("peers add of an existing id at another address is refused, not re-pointed", async () => {
  await withCluster(1, async (c) => {
    const n = c.nodes[0];
    const add = (body: Record<string, unknown>) =>
      call(n, "POST", "/v1/peers", JSON.stringify(body));
    let r = await add({ id: "n9", raft: "mem-n9:1", http: "127.0.0.1:9", voter: false });
    assert.equal(r.status, 200, r.text);
    r = await add({ id: "n9", raft: "mem-typo:1", http: "127.0.0.1:10", voter: false });
    assert.equal(r.status, 409, r.text);
    assert.match(r.json().error as string, /already a member at raft address mem-n9:1/);
    // Neither the Raft address nor the recorded HTTP address changed.
    const n9 = n.raft.getConfiguration().configuration.servers.find((s) => s.id === "n9");
    assert.equal(n9?.address, "mem-n9:1");
    assert.equal(n.fsm.memberHttp("n9"), "http://127.0.0.1:9");
    // The leader itself cannot be re-pointed either.
    r = await add({ id: "n1", raft: "mem-elsewhere:1" });
    assert.equal(r.status, 409, r.text);
    // Same address: still the no-op it was.
    r = await add({ id: "n9", raft: "mem-n9:1", voter: false });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().unchanged, true);
  });
});

Deno.test("unknown JSON fields and repeated query parameters are refused", async () => {
  await withCluster(1, async (c) => {
    const n = c.nodes[0];
    const cases: [string, string, BodyInit | undefined, number, RegExp][] = [
      [
        "POST",
        "/v1/peers",
        '{"id":"n9","raft":"h:1","suffrage":"nonvoter"}',
        400,
        /unknown field "suffrage"/,
      ],
      ["POST", "/v1/leadership-transfer", '{"id":"n1","force":true}', 400, /unknown field/],
      ["PUT", "/v1/kv/k?cas=0&cas=7", "x", 400, /cas given 2 times/],
      ["DELETE", "/v1/kv/k?cas=1&cas=1", undefined, 400, /cas given 2 times/],
    ];
    for (const [method, path, body, want, msg] of cases) {
      const r = await call(n, method, path, body);
      assert.equal(r.status, want, `${method} ${path}: ${r.text}`);
      assert.match(r.json().error as string, msg, `${method} ${path}`);
    }
    assert.equal(n.raft.getConfiguration().configuration.servers.length, 1);
    assert.equal(n.fsm.get("k"), undefined);
  });
});

Deno.test("with a token, unknown routes and bad paths answer 401 before anything else", async () => {
  await withCluster(1, async (c) => {
    const n = c.nodes[0];
    for (const path of ["/nope", "/v1/kv/%zz", "/v1/peers/a/b/c"]) {
      const r = await call(n, "GET", path);
      assert.equal(r.status, 401, `${path}: ${r.text}`);
    }
    assert.equal((await call(n, "GET", "/health/")).status, 200);
    const auth = { authorization: "Bearer t0ken" };
    assert.equal((await call(n, "GET", "/nope", undefined, auth)).status, 404);
  }, { token: "t0ken" });
});

Deno.test("raftd --server accepts only bare http(s) URLs", () => {
  const url = (server: string) =>
    serverUrl("raftd status", { values: { server }, positionals: [] });
  assert.equal(url("127.0.0.1:8002"), "http://127.0.0.1:8002");
  assert.equal(url("https://example.com:8443/"), "https://example.com:8443");
  for (
    const bad of ["ftp://x", "unix:///tmp/s", "http://", "http://h:1/v1/kv", "http://h:1/?a=b"]
  ) {
    assert.throws(() => url(bad), /--server must be a URL/, bad);
  }
});

Deno.test("raftd serve refuses a bad --id, --join or --advertise-http before touching disk", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const base = {
      raftAddress: "127.0.0.1:0",
      httpAddress: "127.0.0.1:0",
      dataDir: `${dir}/data`,
    };
    await assert.rejects(startDaemon({ ...base, id: "bad id" }), /--id must be/);
    await assert.rejects(startDaemon({ ...base, id: "n1", join: "notaurl" }), /--join must be/);
    await assert.rejects(
      startDaemon({ ...base, id: "n1", advertiseHttp: "ftp://x:1/a" }),
      /--advertise-http must be/,
    );
    await assert.rejects(Deno.stat(`${dir}/data`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("raftd serve names the address it cannot bind", async () => {
  const dir = await Deno.makeTempDir();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    await assert.rejects(
      startDaemon({
        id: "n1",
        raftAddress: "127.0.0.1:0",
        httpAddress: `127.0.0.1:${port}`,
        dataDir: `${dir}/h`,
      }),
      new RegExp(`cannot listen on --http 127\\.0\\.0\\.1:${port}: address already in use$`),
    );
    await assert.rejects(
      startDaemon({
        id: "n1",
        raftAddress: `127.0.0.1:${port}`,
        httpAddress: "127.0.0.1:0",
        dataDir: `${dir}/r`,
      }),
      new RegExp(`cannot listen on --raft 127\\.0\\.0\\.1:${port}: address already in use$`),
    );
  } finally {
    taken.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a restart skips a snapshot whose bytes were damaged and keeps every key", async () => {
  const dir = await Deno.makeTempDir();
  const raft = { heartbeatInterval: 20, electionTimeout: 150, snapshotInterval: 0 };
  const options = {
    id: "n1",
    raftAddress: "127.0.0.1:0",
    httpAddress: "127.0.0.1:0",
    dataDir: dir,
    raft,
  };
  const until = async (ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(ok(), "timed out");
  };
  try {
    let d = await startDaemon({ ...options, bootstrap: true });
    try {
      await until(() => d.raft.state === "leader");
      const put = async (k: string) => {
        const res = await fetch(`${d.httpUrl}/v1/kv/${k}`, { method: "PUT", body: `v-${k}` });
        assert.equal(res.status, 200, await res.text());
      };
      await put("a");
      assert.equal((await fetch(`${d.httpUrl}/v1/snapshot`, { method: "POST" })).status, 200);
      await put("b");
      const res = await fetch(`${d.httpUrl}/v1/snapshot`, { method: "POST" });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      await put("c");
    } finally {
      await d.stop();
    }
    // Newest snapshot: make its first key invalid UTF-8 (same size, so only
    // the checksum at the end of the file can tell).
    const snaps = [];
    for await (const e of Deno.readDir(`${dir}/snapshots`)) snaps.push(e.name);
    assert.equal(snaps.length, 2);
    const newest = snaps.sort((x, y) => Number(y.split("-")[1]) - Number(x.split("-")[1]))[0];
    const file = `${dir}/snapshots/${newest}/state.bin`;
    const bytes = await Deno.readFile(file);
    bytes[8 + 25] = 0xff;
    await Deno.writeFile(file, bytes);

    d = await startDaemon(options);
    try {
      await until(() => d.raft.state === "leader");
      for (const k of ["a", "b", "c"]) {
        const r = await fetch(`${d.httpUrl}/v1/kv/${k}`);
        assert.equal(await r.text(), `v-${k}`);
      }
    } finally {
      await d.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
