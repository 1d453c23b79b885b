/**
 * HTTP write benchmark of raftd: three real `raftd serve` processes on
 * loopback, a load client doing `PUT /v1/kv/{key}` against the leader over
 * keep-alive HTTP with `--conc` requests in flight. Prints one JSON line:
 *
 * `{"impl":"raftd-http","runtime","n","size","conc","ops_per_s","p50_ms","p99_ms","follower_peak_rss_mb"}`
 *
 * Usage: `deno run -A bench/http_bench.ts [--n 20000] [--size 128] [--conc 64] [--runtime deno|bun]`
 * (with RAFTD_BIN set, that executable runs the nodes instead).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { RawHttpConnection } from "./_http_client.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args.filter((a) => a !== "--"),
  options: {
    n: { type: "string", default: "20000" },
    size: { type: "string", default: "128" },
    conc: { type: "string", default: "64" },
    runtime: { type: "string", default: "deno" },
    verbose: { type: "boolean", default: false },
  },
  strict: true,
});
const n = Number(values.n);
const size = Number(values.size);
const conc = Number(values.conc);
const runtime = values.runtime;
if (![n, size, conc].every((x) => Number.isInteger(x) && x > 0)) {
  console.error("error: --n, --size and --conc must be positive integers");
  Deno.exit(2);
}
if (runtime !== "deno" && runtime !== "bun") {
  console.error(`error: --runtime must be deno or bun, got ${JSON.stringify(runtime)}`);
  Deno.exit(2);
}

async function output(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout).trim();
}

/** The command running raftd, spawned directly (no npx wrapper) so its pid is the node's. */
async function raftdCommand(): Promise<string[]> {
  const bin = Deno.env.get("RAFTD_BIN");
  if (bin) return [bin];
  if (runtime === "deno") {
    return [Deno.execPath(), "run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}cli/main.ts`];
  }
  // Bun resolves npm packages from node_modules/.
  try {
    Deno.statSync(`${ROOT}node_modules/@msgpack/msgpack`);
  } catch {
    await output(Deno.execPath(), ["install", "--node-modules-dir=auto", "--quiet"]);
  }
  const bun = await output("npx", ["-y", "bun@1.4.4", "-e", "console.log(process.execPath)"]);
  return [bun, `${ROOT}cli/main.ts`];
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface BenchNode {
  id: string;
  url: string;
  child: Deno.ChildProcess;
}

async function getJson(url: string): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return await res.json();
  } catch {
    return undefined;
  }
}

async function waitFor(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function peakRssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

const cmd = await raftdCommand();
const dir = await Deno.makeTempDir({ prefix: "raftd-bench-" });
const nodes: BenchNode[] = [];
try {
  for (let i = 1; i <= 3; i++) {
    const id = `n${i}`;
    const httpPort = freePort();
    const url = `http://127.0.0.1:${httpPort}`;
    const child = new Deno.Command(cmd[0], {
      args: [
        ...cmd.slice(1),
        "serve",
        "--id",
        id,
        "--raft",
        `127.0.0.1:${freePort()}`,
        "--http",
        `127.0.0.1:${httpPort}`,
        "--data",
        `${dir}/${id}`,
        "--log-level",
        values.verbose ? "info" : "warning",
        "--max-value-bytes",
        String(Math.max(size, 1024 * 1024)),
        ...(i === 1 ? ["--bootstrap"] : ["--join", nodes[0].url]),
      ],
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    nodes.push({ id, url, child });
    if (i === 1) {
      await waitFor("n1 healthy", async () => (await getJson(`${url}/health`)) !== undefined);
    }
  }
  await waitFor("three voters", async () => {
    const s = await getJson(`${nodes[0].url}/v1/status`);
    const conf = (s?.configuration ?? []) as { suffrage: string; http: string | null }[];
    return conf.length === 3 && conf.every((c) => c.suffrage === "voter" && c.http !== null);
  });
  for (const node of nodes) {
    await waitFor(
      `${node.id} healthy`,
      async () => (await getJson(`${node.url}/health`)) !== undefined,
    );
  }
  const status = await getJson(`${nodes[0].url}/v1/status`);
  const leaderId = (status?.leader as { id: string } | null)?.id;
  const leader = nodes.find((x) => x.id === leaderId);
  if (!leader) throw new Error("no leader");
  const followers = nodes.filter((x) => x !== leader);

  const value = new Uint8Array(size).fill(120);
  // One keep-alive connection per concurrent client.
  const connections = await Promise.all(
    Array.from({ length: conc }, () => RawHttpConnection.open(leader.url)),
  );
  const put = async (c: RawHttpConnection, key: string) => {
    const res = await c.request("PUT", `/v1/kv/${key}`, value);
    if (res.status !== 200) throw new Error(`PUT ${key}: ${res.status} ${res.body}`);
  };
  // Warm up connections and JIT.
  let next = 0;
  const warm = Math.min(1000, n);
  await Promise.all(connections.map(async (c) => {
    while (next < warm) await put(c, `warm-${next++}`);
  }));

  const latencies = new Float64Array(n);
  next = 0;
  const started = performance.now();
  await Promise.all(connections.map(async (c) => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const t0 = performance.now();
      await put(c, `k${i}`);
      latencies[i] = performance.now() - t0;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  for (const c of connections) c.close();
  latencies.sort();
  const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
  console.log(JSON.stringify({
    impl: "raftd-http",
    runtime: Deno.env.get("RAFTD_BIN") ? `bin:${Deno.env.get("RAFTD_BIN")}` : runtime,
    n,
    size,
    conc,
    ops_per_s: Math.round(n / seconds),
    p50_ms: round(percentile(latencies, 0.5), 3),
    p99_ms: round(percentile(latencies, 0.99), 3),
    follower_peak_rss_mb: round(Math.max(...followers.map((f) => peakRssMb(f.child.pid))), 1),
  }));
} finally {
  for (const node of nodes) {
    try {
      node.child.kill("SIGTERM");
    } catch {
      // ended
    }
  }
  await Promise.race([Promise.all(nodes.map((x) => x.child.status)), sleep(5000)]);
  for (const node of nodes) {
    try {
      node.child.kill("SIGKILL");
    } catch {
      // ended
    }
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
