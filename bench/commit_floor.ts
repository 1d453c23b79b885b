/**
 * The floor under a replicated commit at concurrency 1, without Raft: three
 * processes on loopback shaped like a three-member cluster. The "leader"
 * writes a 160-byte record to its own file and starts its `fdatasync`, sends
 * the record to two "followers" (each writes it, `fdatasync`s and answers
 * with 4 bytes), and counts the round done when its own disk and the first
 * follower have it — the quorum of a Raft commit. The next round starts at
 * once, as the next `apply()` would. Prints one JSON line per mode:
 *
 * `{"bench":"commit_floor","fsync":true,"rounds","p10_ms","p50_ms","p90_ms","load"}`
 *
 * With `"fsync":false` nothing is written or synced: what is left is the
 * loopback round trip and the runtime's event loop. `deno task bench`'s
 * conc 1 `p50_ms` is to be compared with the first line taken in the same
 * minute: the gap is what Raft, the codec and the driver add.
 *
 * Usage: `deno run -A bench/commit_floor.ts [--seconds 3] [--dir /path/on/the/disk/to/test]`
 *
 * @module
 */

import { benchArgs, DIR_OPTION } from "./_args.ts";
import { percentile } from "./_percentile.ts";

const RECORD_BYTES = 160;

const values = benchArgs(
  "deno task bench:floor",
  "The commit floor without Raft: three processes, own write + fdatasync and two followers;\n" +
    "one JSON line with fsync, one without.",
  {
    seconds: { type: "number", default: 3, help: "seconds per mode" },
    dir: DIR_OPTION,
    follower: {
      type: "string",
      arg: "MODE",
      choices: ["fsync", "none"],
      help: "internal: run as a follower (how the floor spawns its followers)",
    },
  },
);
const seconds = values.seconds;

/** Follower: answer each read with the number of whole records received so far. */
async function follower(mode: string): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log((listener.addr as Deno.NetAddr).port);
  const dir = await Deno.makeTempDir({ prefix: "raftd_floor_", dir: values.dir });
  const file = await Deno.open(`${dir}/log`, { write: true, create: true, append: true });
  const conn = await listener.accept();
  listener.close();
  conn.setNoDelay(true);
  const buf = new Uint8Array(64 * 1024);
  const ack = new Uint8Array(4);
  let bytes = 0;
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      if (mode === "fsync") {
        file.writeSync(buf.subarray(0, n));
        await file.syncData();
      }
      bytes += n;
      new DataView(ack.buffer).setUint32(0, Math.floor(bytes / RECORD_BYTES));
      await conn.write(ack);
    }
  } finally {
    file.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function spawnFollower(mode: string): Promise<{ child: Deno.ChildProcess; port: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      `--follower=${mode}`,
      ...(values.dir ? [`--dir=${values.dir}`] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = setTimeout(() => child.kill("SIGKILL"), 10_000);
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("follower ended before telling its port");
    text += value;
  }
  clearTimeout(deadline);
  reader.releaseLock();
  return { child, port: Number(text.trim()) };
}

/** Leader: rounds of own write + fdatasync ∥ two followers; done at own + first ack. */
async function leader(mode: string): Promise<void> {
  const load = Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  const followers = [await spawnFollower(mode), await spawnFollower(mode)];
  const conns = await Promise.all(
    followers.map((f) => Deno.connect({ hostname: "127.0.0.1", port: f.port })),
  );
  for (const c of conns) c.setNoDelay(true);
  const dir = await Deno.makeTempDir({ prefix: "raftd_floor_", dir: values.dir });
  const file = await Deno.open(`${dir}/log`, { write: true, create: true, append: true });
  const record = new Uint8Array(RECORD_BYTES).fill(0x61);
  const acked = [0, 0];
  let wake: (() => void) | undefined;
  const readers = conns.map(async (c, k) => {
    const buf = new Uint8Array(4096);
    let pending = new Uint8Array(0);
    for (;;) {
      const n = await c.read(buf).catch(() => null);
      if (n === null) return;
      const all = new Uint8Array(pending.length + n);
      all.set(pending);
      all.set(buf.subarray(0, n), pending.length);
      const whole = all.length - (all.length % 4);
      if (whole > 0) acked[k] = new DataView(all.buffer).getUint32(whole - 4);
      pending = all.slice(whole);
      wake?.();
    }
  });
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  for (let round = 1; performance.now() < end; round++) {
    const start = performance.now();
    let own: Promise<void> = Promise.resolve();
    if (mode === "fsync") {
      file.writeSync(record);
      own = file.syncData();
    }
    for (const c of conns) void c.write(record);
    await own;
    while (Math.max(acked[0], acked[1]) < round) {
      await new Promise<void>((resolve) => wake = resolve);
    }
    times.push(performance.now() - start);
  }
  for (const c of conns) c.close();
  await Promise.all(readers);
  await Promise.all(followers.map((f) => f.child.status));
  file.close();
  await Deno.remove(dir, { recursive: true });
  times.sort((a, b) => a - b);
  const at = (q: number) => Number(percentile(times, q).toFixed(3));
  console.log(JSON.stringify({
    bench: "commit_floor",
    fsync: mode === "fsync",
    rounds: times.length,
    p10_ms: at(0.1),
    p50_ms: at(0.5),
    p90_ms: at(0.9),
    load,
  }));
}

if (values.follower !== undefined) {
  await follower(values.follower);
} else {
  await leader("fsync");
  await leader("none");
}
