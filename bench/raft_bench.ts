/**
 * Library benchmark: three OS processes on loopback TCP with file stores
 * (fsync on). The leader bootstraps, adds the two followers as voters, waits
 * for them to catch up, then keeps `conc` apply() calls in flight until `n`
 * are done. Prints one JSON line.
 *
 *   deno task bench -- --n 20000 --size 128 --conc 64 [--runtime deno|bun] [--runs 1]
 *
 * @module
 */

import { benchArgs } from "./_args.ts";
import { splitLines } from "./_node_io.ts";
import { bunCommand } from "./_runtime.ts";

const values = benchArgs(
  "deno task bench",
  "Library benchmark: three processes on loopback TCP with file stores (fsync on);\n" +
    "one JSON line per run.",
  {
    n: { type: "integer", default: 20000, help: "measured applies per run" },
    size: { type: "integer", default: 128, help: "entry size in bytes" },
    conc: { type: "integer", default: 64, help: "apply() calls in flight" },
    runtime: {
      type: "string",
      default: "deno",
      choices: ["deno", "bun"],
      help: "runtime of the nodes",
    },
    runs: { type: "integer", default: 1, help: "runs, a new cluster each" },
    verbose: {
      type: "boolean",
      help: "print each node's storage and message statistics to stderr",
    },
    "cpu-prof": {
      type: "string",
      arg: "DIR",
      help:
        "write a V8 tick log of the leader (Deno only) into DIR (read with node --prof-process)",
    },
    "snapshot-threshold": { type: "integer", default: 8192, help: "the nodes' snapshotThreshold" },
    "v8-flags": {
      type: "string",
      arg: "FLAGS",
      help: "extra V8 flags for every node (Deno only), e.g. --max-semi-space-size=2",
    },
    "trailing-logs": { type: "integer", default: 10240, help: "the nodes' trailingLogs" },
  },
);
const { n, size, conc, runtime } = values;

interface Child {
  process: Deno.ChildProcess;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  lines: AsyncIterator<string>;
}

const nodeScript = new URL("./raft_node.ts", import.meta.url).pathname;

async function spawnNode(
  id: string,
  dir: string,
  profile = false,
): Promise<Child & { address: string }> {
  const extra = [
    `--id=${id}`,
    `--dir=${dir}`,
    `--snapshot-threshold=${values["snapshot-threshold"]}`,
    `--trailing-logs=${values["trailing-logs"]}`,
  ];
  const [cmd, ...args] = runtime === "bun"
    ? [...(await bunCommand()), "run", nodeScript, ...extra]
    : [
      Deno.execPath(),
      "run",
      "-A",
      ...(profile ? [`--v8-flags=--prof,--logfile=${values["cpu-prof"]}/v8-%p.log`] : []),
      ...(values["v8-flags"] && !profile ? [`--v8-flags=${values["v8-flags"]}`] : []),
      nodeScript,
      ...extra,
    ];
  const process = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = process.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines())
    [Symbol.asyncIterator]();
  const child = { process, writer: process.stdin.getWriter(), lines };
  const first = await next(child);
  return { ...child, address: first.address as string };
}

async function next(child: Child): Promise<Record<string, unknown>> {
  for (;;) {
    const r = await child.lines.next();
    if (r.done) throw new Error("bench node exited");
    const line = r.value.trim();
    if (!line.startsWith("{")) continue; // log lines
    const msg = JSON.parse(line);
    if (msg.error) throw new Error(`bench node: ${msg.error}`);
    return msg;
  }
}

async function command(
  child: Child,
  cmd: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  await child.writer.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
  return await next(child);
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ ticks
}

/** `VmHWM` (peak) or `VmRSS` (now) of a process, in MB (0 when unknown). */
function rssMb(pid: number, field: "VmHWM" | "VmRSS" = "VmHWM"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = status.match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/**
 * RSS of the runtime doing nothing (a one-line program that waits a second):
 * the floor under every node's figure.
 */
async function idleRuntimeRssMb(): Promise<number> {
  const status = runtime === "bun"
    ? "require('fs').readFileSync('/proc/self/status', 'utf8')"
    : "Deno.readTextFileSync('/proc/self/status')";
  const program = `setTimeout(() => console.log(${status}.match(/VmRSS:\\s+(\\d+)/)[1]), 1000)`;
  const file = await Deno.makeTempFile({ prefix: "raftd-bench-idle-", suffix: ".js" });
  await Deno.writeTextFile(file, program);
  const [cmd, ...args] = runtime === "bun"
    ? [...(await bunCommand()), "run", file]
    : [Deno.execPath(), "run", "-A", file];
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output()
    .finally(() => Deno.remove(file));
  const kb = Number(new TextDecoder().decode(out.stdout).trim());
  return Number.isFinite(kb) && kb > 0 ? Math.round(kb / 1024) : 0;
}

async function runOnce(): Promise<void> {
  const idleRss = await idleRuntimeRssMb();
  const root = await Deno.makeTempDir({ prefix: "raftd-bench-" });
  const children: Child[] = [];
  try {
    const leader = await spawnNode("n1", `${root}/n1`, values["cpu-prof"] !== undefined);
    children.push(leader);
    const f1 = await spawnNode("n2", `${root}/n2`);
    children.push(f1);
    const f2 = await spawnNode("n3", `${root}/n3`);
    children.push(f2);
    await command(leader, { cmd: "bootstrap" });
    await command(leader, { cmd: "add", id: "n2", address: f1.address });
    await command(leader, { cmd: "add", id: "n3", address: f2.address });
    // The followers have started and caught up with the (tiny) log: their idle size.
    const startRss = Math.max(rssMb(f1.process.pid, "VmRSS"), rssMb(f2.process.pid, "VmRSS"));
    const cpu0 = [leader, f1, f2].map((c) => cpuSeconds(c.process.pid));
    const result = await command(leader, { cmd: "load", n, size, conc });
    const cpu = [leader, f1, f2].map((c, k) => cpuSeconds(c.process.pid) - cpu0[k]);
    if (values["cpu-prof"] !== undefined) await command(leader, { cmd: "exit" }).catch(() => {});
    const rss = Math.max(rssMb(f1.process.pid), rssMb(f2.process.pid));
    if (values.verbose) {
      for (const c of [leader, f1, f2]) {
        console.error(JSON.stringify(await command(c, { cmd: "stats" })));
      }
    }
    console.log(JSON.stringify({
      impl: "raftd",
      runtime,
      n,
      size,
      conc,
      ops_per_s: result.ops_per_s,
      p50_ms: result.p50_ms,
      p99_ms: result.p99_ms,
      follower_peak_rss_mb: rss,
      follower_start_rss_mb: startRss,
      runtime_idle_rss_mb: idleRss,
      // CPU of the three nodes per apply (the leader's includes the load loop).
      nodes_cpu_us_per_op: Math.round((cpu[0] + cpu[1] + cpu[2]) / n * 1e6),
      leader_cpu_us_per_op: Math.round(cpu[0] / n * 1e6),
      load: Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]),
    }));
  } finally {
    for (const c of children) {
      try {
        c.process.kill("SIGKILL");
      } catch { /* already gone */ }
      await c.process.status;
    }
    await Deno.remove(root, { recursive: true });
  }
}

for (let i = 0; i < values.runs; i++) await runOnce();
