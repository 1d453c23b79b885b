/**
 * HTTP benchmark of raftd: three real `raftd serve` processes on loopback, a
 * load client keeping `--conc` requests in flight over keep-alive HTTP (one
 * connection per concurrent request). Prints one JSON line per run:
 *
 * `{"impl":"raftd-http","runtime","op","consistency","target","n","size","conc","ops_per_s",
 * "p50_ms","p99_ms","follower_peak_rss_mb","client_cpu_pct","nodes_cpu_pct","client_cpu_us_per_op",
 * "nodes_cpu_us_per_op","leader_cpu_us_per_op","load"}`
 *
 * - `--op put` (default): `PUT /v1/kv/k{i}` with a `--size`-byte value.
 * - `--op get`: first `--keys` keys (default min(n, 10000)) are written, then
 *   `GET /v1/kv/k{i mod keys}?consistency=…` reads them.
 * - `--op health`: `GET /health`, a small JSON answer from memory: the HTTP
 *   layer alone (server, routing, response), the ceiling of any read.
 * - `--consistency linearizable|lease|stale` (GET only; default linearizable).
 * - `--target leader|follower`: which node the client talks to (default leader;
 *   a follower forwards writes and linearizable/lease reads to the leader).
 *
 * `client_cpu_pct` and `nodes_cpu_pct` are CPU time over wall time during the
 * measured phase (100 = one core busy): the client shares the machine's cores
 * with the three nodes. `load` is the 1-minute load average at the start.
 *
 * Usage: `deno run -A bench/http_bench.ts [--n 20000] [--size 128] [--conc 64] [--op put|get|health]
 * [--consistency lease] [--target leader|follower] [--runs 1] [--runtime deno|bun]`
 * (with RAFTD_BIN set, that executable runs the nodes instead).
 *
 * @module
 */

import { benchArgs } from "./_args.ts";
import { RawHttpConnection } from "./_http_client.ts";
import { percentile } from "./_percentile.ts";
import { RAFTD_V8_FLAGS } from "../src/platform/process.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const values = benchArgs(
  "deno task bench:http",
  "HTTP benchmark of raftd: three `raftd serve` on loopback, one JSON line per run\n" +
    "(RAFTD_BIN=path runs that executable as the nodes).",
  {
    n: { type: "integer", default: 20000, help: "measured requests per run" },
    size: { type: "integer", default: 128, help: "value size in bytes (PUT)" },
    conc: { type: "integer", default: 64, help: "requests in flight (one connection each)" },
    runtime: {
      type: "string",
      default: "deno",
      choices: ["deno", "bun"],
      help: "runtime of the nodes",
    },
    op: { type: "string", default: "put", choices: ["put", "get", "health"], help: "the request" },
    consistency: {
      type: "string",
      default: "linearizable",
      choices: ["linearizable", "lease", "stale"],
      help: "consistency of --op get",
    },
    target: {
      type: "string",
      default: "leader",
      choices: ["leader", "follower"],
      help: "the node the client talks to",
    },
    keys: { type: "integer", help: "keys written then read by --op get (default min(n, 10000))" },
    runs: { type: "integer", default: 1, help: "runs, a new cluster each" },
    "cpu-prof": {
      type: "string",
      arg: "DIR",
      help: "write a V8 tick log of n1, the first leader (Deno only), into DIR",
    },
    "v8-flags": {
      type: "string",
      arg: "FLAGS",
      help: "V8 flags of every node (Deno only; default: those of `deno task raftd`)",
    },
    verbose: { type: "boolean", help: "node logs at info, and the leader's messages sent" },
  },
);
const { n, size, conc, runs, runtime, op, consistency, target } = values;
const keys = values.keys ?? Math.min(n, 10_000);

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

/** Raft messages the node at `url` has sent so far, by type (from /metrics). */
async function rpcSent(url: string): Promise<Record<string, number>> {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  const sent: Record<string, number> = {};
  for (const m of text.matchAll(/^raftd_rpc_sent_total\{type="([a-z_]+)"\} (\d+)/gm)) {
    sent[m[1]] = Number(m[2]);
  }
  return sent;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces) start at ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ)
}

const cmd = await raftdCommand();
for (let run = 0; run < runs; run++) await runOnce();

async function runOnce(): Promise<void> {
  const load = Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  const dir = await Deno.makeTempDir({ prefix: "raftd-bench-" });
  const nodes: BenchNode[] = [];
  try {
    for (let i = 1; i <= 3; i++) {
      const id = `n${i}`;
      const httpPort = freePort();
      const url = `http://127.0.0.1:${httpPort}`;
      const profile = i === 1 && values["cpu-prof"] !== undefined && runtime === "deno" &&
        !Deno.env.get("RAFTD_BIN");
      const v8Flags = runtime === "deno" && !Deno.env.get("RAFTD_BIN")
        ? [
          ...(profile
            ? [
              "--prof",
              "--prof-sampling-interval=200",
              `--logfile=${values["cpu-prof"]}/v8-%p.log`,
            ]
            : []),
          ...(values["v8-flags"] ?? RAFTD_V8_FLAGS).split(",").filter((f) => f !== ""),
        ]
        : [];
      const child = new Deno.Command(cmd[0], {
        args: [
          ...cmd.slice(1, 3),
          ...(v8Flags.length > 0 ? [`--v8-flags=${v8Flags.join(",")}`] : []),
          ...cmd.slice(3),
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
    const server = target === "leader" ? leader : followers[0];
    // One keep-alive connection per concurrent client.
    const connections = await Promise.all(
      Array.from({ length: conc }, () => RawHttpConnection.open(server.url)),
    );
    const put = async (c: RawHttpConnection, key: string) => {
      const res = await c.request("PUT", `/v1/kv/${key}`, value);
      if (res.status !== 200) throw new Error(`PUT ${key}: ${res.status} ${res.text()}`);
    };
    const query = `?consistency=${consistency}`;
    const get = async (c: RawHttpConnection, key: string) => {
      const res = await c.request("GET", `/v1/kv/${key}${query}`);
      if (res.status !== 200) throw new Error(`GET ${key}: ${res.status} ${res.text()}`);
    };
    // Warm up connections and JIT; for reads, write the keys first.
    let next = 0;
    const warm = op === "get" ? keys : Math.min(1000, n);
    await Promise.all(connections.map(async (c) => {
      while (next < warm) {
        const i = next++;
        await put(c, op === "get" ? `k${i}` : `warm-${i}`);
      }
    }));
    if (op === "get") {
      // Every node has applied the last write (stale reads of a follower find it).
      next = 0;
      await Promise.all(connections.map(async (c) => {
        while (next < Math.min(1000, n)) await get(c, `k${next++ % keys}`);
      }));
    }

    const latencies = new Float64Array(n);
    next = 0;
    const health = async (c: RawHttpConnection) => {
      const res = await c.request("GET", "/health");
      if (res.status !== 200) throw new Error(`GET /health: ${res.status} ${res.text()}`);
    };
    const run = op === "put"
      ? (c: RawHttpConnection, i: number) => put(c, `k${i}`)
      : op === "get"
      ? (c: RawHttpConnection, i: number) => get(c, `k${i % keys}`)
      : (c: RawHttpConnection) => health(c);
    const sent0 = await rpcSent(leader.url);
    const cpu0 = nodes.map((x) => cpuSeconds(x.child.pid));
    const client0 = cpuSeconds("self");
    const started = performance.now();
    await Promise.all(connections.map(async (c) => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const t0 = performance.now();
        await run(c, i);
        latencies[i] = performance.now() - t0;
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    const clientCpu = cpuSeconds("self") - client0;
    const cpu1 = nodes.map((x) => cpuSeconds(x.child.pid));
    const nodesCpu = cpu1.reduce((sum, c, k) => sum + c - cpu0[k], 0);
    const leaderAt = nodes.indexOf(leader);
    const leaderCpu = leaderAt < 0 ? NaN : cpu1[leaderAt] - cpu0[leaderAt];
    const sent1 = await rpcSent(leader.url);
    const leaderSent: Record<string, number> = {};
    for (const [type, count] of Object.entries(sent1)) {
      if (count - (sent0[type] ?? 0) > 0) leaderSent[type] = count - (sent0[type] ?? 0);
    }
    for (const c of connections) c.close();
    latencies.sort();
    const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
    console.log(JSON.stringify({
      impl: "raftd-http",
      runtime: Deno.env.get("RAFTD_BIN") ? `bin:${Deno.env.get("RAFTD_BIN")}` : runtime,
      op,
      ...(op === "get" ? { consistency } : {}),
      target,
      n,
      size,
      conc,
      ops_per_s: Math.round(n / seconds),
      p50_ms: round(percentile(latencies, 0.5), 3),
      p99_ms: round(percentile(latencies, 0.99), 3),
      follower_peak_rss_mb: round(Math.max(...followers.map((f) => peakRssMb(f.child.pid))), 1),
      client_cpu_pct: Math.round(clientCpu / seconds * 100),
      nodes_cpu_pct: Math.round(nodesCpu / seconds * 100),
      client_cpu_us_per_op: round(clientCpu / n * 1e6, 1),
      nodes_cpu_us_per_op: round(nodesCpu / n * 1e6, 1),
      leader_cpu_us_per_op: round(leaderCpu / n * 1e6, 1),
      load,
      ...(values.verbose ? { leader_rpc_sent: leaderSent } : {}),
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
}
