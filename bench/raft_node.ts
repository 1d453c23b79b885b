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

import { benchArgs } from "./_args.ts";
import process, { stdin, stdout } from "node:process";
import { createInterface } from "node:readline";
import {
  FileLogStore,
  FileSnapshotStore,
  FileStableStore,
  type FSMEntry,
  type FSMSnapshot,
  Raft,
  TcpTransport,
} from "../mod.ts";

const values = benchArgs(
  "bench/raft_node.ts",
  "One node of the library benchmark (spawned by bench/raft_bench.ts), driven by JSON on stdin.",
  {
    id: { type: "string", default: "", arg: "ID", help: "server id (required)" },
    dir: { type: "string", default: "", arg: "DIR", help: "data directory (required)" },
    "snapshot-threshold": { type: "integer", default: 8192, help: "snapshotThreshold" },
    "trailing-logs": { type: "integer", default: 10240, help: "trailingLogs" },
  },
);
if (values.id === "" || values.dir === "") {
  console.error("bench/raft_node.ts: --id and --dir are required (see bench/raft_node.ts --help)");
  process.exit(2);
}

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
  stdout.write(JSON.stringify(value) + "\n");
}

reply({ ready: true, address: transport.localAddress });

if (process.env.BENCH_MEMORY) {
  // Where a follower's memory goes: V8 heap vs buffers, once a second on stderr.
  setInterval(() => {
    const m = process.memoryUsage();
    const mb = (n: number) => Math.round(n / 1048576);
    process.stderr.write(
      `${values.id} rss=${mb(m.rss)} heapUsed=${mb(m.heapUsed)} heapTotal=${
        mb(m.heapTotal)
      } external=${mb(m.external)} arrayBuffers=${
        mb(m.arrayBuffers)
      } last=${raft.lastIndex} first=${raft.lastSnapshotIndex}\n`,
    );
  }, 1000).unref?.();
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

const lines = createInterface({ input: stdin });
for await (const line of lines) {
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
      const mem = process.memoryUsage();
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
process.exit(0);
