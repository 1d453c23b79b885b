/**
 * Append throughput of FileLogStore: one JSON line per (batch size, entry
 * size). Each batch is one storeLogs call awaited before the next (one
 * write + one fdatasync each), so small batches measure fsync latency and
 * large ones the write path. `fsyncs` counts every fdatasync/fsync (files
 * and directories) through the platform layer; `mb_per_s` is payload
 * megabytes (10^6 bytes) per second.
 *
 * The first line is the floor: a plain `write` + `fdatasync` loop
 * (`write_fdatasync`, latency percentiles), no log store.
 *
 * Usage: deno run -A bench/log_bench.ts [--seconds 2] [--dir /path/on/the/disk/to/test]
 *
 * @module
 */

import { benchArgs, DIR_OPTION } from "./_args.ts";
import { type Entry, EntryType } from "../src/core/types.ts";
import { defaultFileSystem, type FileSystem } from "../src/platform/fs.ts";
import { FileLogStore } from "../src/storage/file_log_store.ts";
import { percentile } from "./_percentile.ts";

const values = benchArgs(
  "deno task bench:log",
  "Append throughput of FileLogStore, one JSON line per batch and entry size;\n" +
    "the first line is the write + fdatasync floor.",
  {
    seconds: { type: "number", default: 2, help: "seconds per batch size" },
    dir: DIR_OPTION,
  },
);
const seconds = values.seconds;

function countingFs(): { fs: FileSystem; syncs: () => number } {
  const base = defaultFileSystem();
  let syncs = 0;
  const fs: FileSystem = {
    ...base,
    async open(path, options) {
      const h = await base.open(path, options);
      return {
        path: h.path,
        readAt: (b, p) => h.readAt(b, p),
        write: (d) => h.write(d),
        dataSync: () => (syncs++, h.dataSync()),
        sync: () => (syncs++, h.sync()),
        truncate: (n) => h.truncate(n),
        stat: () => h.stat(),
        close: () => h.close(),
      };
    },
    syncDir: (p) => (syncs++, base.syncDir(p)),
  };
  return { fs, syncs: () => syncs };
}

async function run(batch: number, size: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftd_bench_", dir: values.dir });
  const { fs, syncs } = countingFs();
  const log = await FileLogStore.open(dir, { fs });
  const data = new Uint8Array(size).fill(0x61);
  let next = 1;
  const makeBatch = (): Entry[] => {
    const out: Entry[] = new Array(batch);
    for (let k = 0; k < batch; k++) {
      out[k] = { index: next + k, term: 1, type: EntryType.Normal, data };
    }
    next += batch;
    return out;
  };
  // Warm up (and create the first segment) outside the measurement.
  for (let i = 0; i < 5; i++) await log.storeLogs(makeBatch());
  const firstMeasured = next;
  const syncs0 = syncs();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  while (performance.now() < deadline) await log.storeLogs(makeBatch());
  const elapsed = (performance.now() - t0) / 1000;
  const entries = next - firstMeasured;
  const fsyncs = syncs() - syncs0;
  await log.close();
  await Deno.remove(dir, { recursive: true });
  console.log(JSON.stringify({
    bench: "log",
    batch,
    size,
    entries,
    appends_per_s: Math.round(entries / elapsed),
    mb_per_s: Math.round((entries * size) / 1e6 / elapsed * 10) / 10,
    fsyncs,
  }));
}

/**
 * The floor under every commit: `write` + `fdatasync` of one small record in
 * a loop, on a plain file, without the log store. Latency percentiles in ms.
 */
async function raw(size: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftd_bench_", dir: values.dir });
  const file = await Deno.open(`${dir}/raw`, { write: true, create: true, append: true });
  const record = new Uint8Array(size + 16).fill(0x61);
  for (let i = 0; i < 5; i++) {
    file.writeSync(record);
    await file.syncData();
  }
  const times: number[] = [];
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  while (performance.now() < deadline) {
    const start = performance.now();
    file.writeSync(record);
    await file.syncData();
    times.push(performance.now() - start);
  }
  file.close();
  await Deno.remove(dir, { recursive: true });
  times.sort((a, b) => a - b);
  const at = (q: number) => Number(percentile(times, q).toFixed(3));
  console.log(JSON.stringify({
    bench: "write_fdatasync",
    size: record.length,
    syncs: times.length,
    p10_ms: at(0.1),
    p50_ms: at(0.5),
    p90_ms: at(0.9),
  }));
}

await raw(128);
for (const size of [128, 4096]) {
  for (const batch of [1, 16, 256]) await run(batch, size);
}
