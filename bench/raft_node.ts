/**
 * One process of the library benchmark (`bench/raft_bench.ts`): a Raft node
 * on file stores (fsync on) and the TCP transport, driven by JSON commands on
 * stdin, answering with JSON lines on stdout.
 *
 * Commands: `{"cmd":"bootstrap"}`, `{"cmd":"add","id","address"}`,
 * `{"cmd":"load","n","size","conc"}`, `{"cmd":"exit"}`.
 *
 * @module
 */

import { envVar, exitProcess, memoryUsage, scriptArgs, stdinLines } from "./_node_io.ts";
import {
  FileLogStore,
  FileSnapshotStore,
  FileStableStore,
  type FSMEntry,
  type FSMSnapshot,
  Raft,
  TcpTransport,
} from "../mod.ts";

const USAGE = `Usage: bench/raft_node.ts --id ID --dir DIR [options]

One node of the library benchmark (spawned by bench/raft_bench.ts), driven by JSON on stdin.

Options:
  --id ID                   server id (required)
  --dir DIR                 data directory (required)
  --snapshot-threshold N    snapshotThreshold (default: 8192)
  --trailing-logs N         trailingLogs (default: 10240)
  --help                    show this help`;

/**
 * The node's flags, parsed by hand to the same rules as every benchmark's
 * (`_args.ts`): that parser is built on `node:util`, which would start
 * Deno's Node.js layer in the process whose memory is measured (see
 * `_node_io.ts`).
 */
function nodeArgs(argv: string[]) {
  const values = { id: "", dir: "", "snapshot-threshold": 8192, "trailing-logs": 10240 };
  const fail = (message: string): never => {
    console.error(`error: ${message} (see bench/raft_node.ts --help)`);
    return exitProcess(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") continue;
    if (arg === "--help") {
      console.log(USAGE);
      exitProcess(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    const name = m?.[1];
    if (
      m === null || !(name === "id" || name === "dir" || name === "snapshot-threshold" ||
        name === "trailing-logs")
    ) {
      return fail(`unknown option '${arg}'`);
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) return fail(`option --${name} needs a value`);
    if (name === "id" || name === "dir") values[name] = value;
    else if (/^[1-9][0-9]*$/.test(value)) values[name] = Number(value);
    else fail(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  if (values.id === "" || values.dir === "") fail("--id and --dir are required");
  return values;
}

const values = nodeArgs(scriptArgs());

/** A bench FSM: counts entries and bytes; its snapshot is tiny. */
class CountingFSM {
  count = 0;
  bytes = 0;
  apply(e: FSMEntry): number {
    this.count++;
    this.bytes += e.data.byteLength;
    return this.count;
  }
  snapshot(): FSMSnapshot {
    const text = JSON.stringify({ count: this.count, bytes: this.bytes });
    return {
      async persist(sink) {
        await sink.write(new TextEncoder().encode(text));
      },
      release() {},
    };
  }
  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    let text = "";
    for await (const c of data) text += new TextDecoder().decode(c);
    const s = JSON.parse(text);
    this.count = s.count;
    this.bytes = s.bytes;
  }
}

const dir = values.dir;
const transport = await TcpTransport.listen({ address: "127.0.0.1:0" });
const raft = await Raft.create(
  {
    id: values.id,
    snapshotThreshold: values["snapshot-threshold"],
    trailingLogs: values["trailing-logs"],
  },
  new CountingFSM(),
  {
    logStore: await FileLogStore.open(`${dir}/log`),
    stableStore: await FileStableStore.open(`${dir}/stable`),
    snapshotStore: await FileSnapshotStore.open(`${dir}/snapshots`),
    transport,
  },
);

function reply(value: unknown): void {
  console.log(JSON.stringify(value));
}

reply({ ready: true, address: transport.localAddress });

if (envVar("BENCH_MEMORY")) {
  // Where a follower's memory goes: V8 heap vs buffers (`external`), once a second on stderr.
  setInterval(() => {
    const m = memoryUsage();
    const mb = (n: number) => Math.round(n / 1048576);
    console.error(
      `${values.id} rss=${mb(m.rss)} heapUsed=${mb(m.heapUsed)} heapTotal=${
        mb(m.heapTotal)
      } external=${mb(m.external)} last=${raft.lastIndex} first=${raft.lastSnapshotIndex}`,
    );
  }, 1000);
}

async function waitUntil(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function load(n: number, size: number, conc: number): Promise<void> {
  const payload = new Uint8Array(size).fill(120);
  const latencies = new Float64Array(n);
  let issued = 0;
  const start = performance.now();
  async function worker(): Promise<void> {
    while (issued < n) {
      const i = issued++;
      const t0 = performance.now();
      await raft.apply(payload);
      latencies[i] = performance.now() - t0;
    }
  }
  await Promise.all(Array.from({ length: conc }, worker));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort();
  reply({
    done: true,
    ops_per_s: Math.round(n / seconds),
    p50_ms: Number(latencies[Math.floor(n * 0.5)].toFixed(3)),
    p99_ms: Number(latencies[Math.min(n - 1, Math.floor(n * 0.99))].toFixed(3)),
    fsyncs: raft.stats().fsyncs,
  });
}

for await (const line of stdinLines()) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  try {
    if (cmd.cmd === "bootstrap") {
      await raft.bootstrapCluster({
        servers: [{ id: values.id, address: transport.localAddress, suffrage: "voter" }],
      });
      await waitUntil(() => raft.state === "leader");
      reply({ ok: true });
    } else if (cmd.cmd === "add") {
      await raft.addVoter(cmd.id, cmd.address);
      await waitUntil(() =>
        raft.getConfiguration().configuration.servers.find((s) => s.id === cmd.id)?.suffrage ===
          "voter"
      );
      reply({ ok: true });
    } else if (cmd.cmd === "load") {
      await load(cmd.n, cmd.size, cmd.conc);
    } else if (cmd.cmd === "stats") {
      const st = raft.stats();
      const q = (h: { count: number; sum: number }) =>
        h.count ? Number((h.sum / h.count * 1000).toFixed(3)) : 0;
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      const mem = memoryUsage();
      reply({
        id: values.id,
        heap_used_after_gc_mb: gc ? Math.round(mem.heapUsed / 1048576) : undefined,
        external_mb: Math.round(mem.external / 1048576),
        rss_mb: Math.round(mem.rss / 1048576),
        fsyncs: st.fsyncs,
        store_logs_avg_ms: q(st.storeLogsSeconds),
        apply_avg_ms: q(st.applySeconds),
        commit_avg_ms: q(st.commitSeconds),
        log_entries_in_memory: st.logEntriesInMemory,
        log_bytes_in_memory: st.logBytesInMemory,
        log_reads: st.logReads,
        sent: st.messagesSent,
        received: st.messagesReceived,
      });
    } else if (cmd.cmd === "exit") {
      break;
    }
  } catch (e) {
    reply({ error: String(e) });
  }
}
await raft.shutdown();
await transport.close();
exitProcess(0);
