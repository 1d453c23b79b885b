/**
 * Kill -9 during writes: a child process appends to a FileLogStore and
 * prints what is durable; we SIGKILL it at a random moment, reopen, and
 * check that every acknowledged batch is intact and nothing else is wrong.
 * Set RAFTD_CRASH_SEED to replay a seed's data (the kill time still varies).
 */
import { strict as assert } from "node:assert";
import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { entryFor, prng, randInt, sameEntry } from "./_data.ts";
import { CRASH_MAX_ENTRY, CRASH_SEGMENT_BYTES } from "./crash_child.ts";

const CHILD = new URL("./crash_child.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
const RUNS = 4;

async function crashOnce(seed: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "raftd_crash_" });
  const rand = prng(seed);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CHILD, dir, String(seed)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let acked = 0;
  let firstFloor = 0;
  let lines = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const killAfter = randInt(rand, 100, 900);
    let buf = "";
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const [kind, n] = buf.slice(0, nl).split(" ");
        buf = buf.slice(nl + 1);
        lines++;
        if (kind === "A") acked = Math.max(acked, Number(n));
        else if (kind === "F") firstFloor = Math.max(firstFloor, Number(n));
        else throw new Error(`unexpected line from the child: ${kind} ${n}`);
      }
      if (timer === undefined && lines > 0) {
        timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* already gone */ }
        }, killAfter);
      }
    }
    const status = await child.status;
    const err = await stderr;
    assert.equal(status.signal, "SIGKILL", `seed ${seed}: child ended by itself: ${err}`);
    assert.ok(acked > 0, `seed ${seed}: the child acknowledged nothing: ${err}`);

    const log = await FileLogStore.open(dir, { segmentBytes: CRASH_SEGMENT_BYTES });
    try {
      const first = await log.firstIndex();
      const last = await log.lastIndex();
      const why =
        `seed ${seed} (acked ${acked}, first floor ${firstFloor}, first ${first}, last ${last})`;
      assert.ok(last >= acked, `${why}: acknowledged entries were lost`);
      assert.ok(first >= 1 && first >= firstFloor, `${why}: a durable prefix deletion was lost`);
      assert.ok(first <= acked, `${why}: first index past the acknowledged entries`);
      const all = await log.getLogs(first, last);
      assert.equal(all.length, last - first + 1, why);
      for (let k = 0; k < all.length; k++) {
        assert.ok(
          sameEntry(all[k], entryFor(seed, first + k, CRASH_MAX_ENTRY)),
          `${why}: entry ${first + k}`,
        );
      }
      assert.equal(await log.getLog(last + 1), undefined, why);
      return `seed ${seed}: killed after ${killAfter} ms, acked ${acked}, recovered ${first}..${last}`;
    } finally {
      await log.close();
    }
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("crash: SIGKILL during appends loses nothing acknowledged", async () => {
  const fixed = Deno.env.get("RAFTD_CRASH_SEED");
  const base = fixed !== undefined ? Number(fixed) : (Date.now() & 0x7fffffff);
  for (let run = 0; run < RUNS; run++) {
    const seed = fixed !== undefined ? base : base + run;
    const r = await crashOnce(seed).catch((e) => {
      throw new Error(`crash test failed with seed ${seed} (replay: RAFTD_CRASH_SEED=${seed})`, {
        cause: e,
      });
    });
    if (Deno.env.get("RAFTD_CRASH_VERBOSE")) console.log(r);
  }
});
