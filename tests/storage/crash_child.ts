/**
 * Child process of crash_test.ts: appends batches to a FileLogStore forever
 * (three in flight, so writes get merged), printing `A <last index>` once a
 * batch is durable and `F <first index>` once a prefix deletion is. The
 * parent SIGKILLs it at a random moment.
 *
 * Usage: deno run -A tests/storage/crash_child.ts <dir> <seed>
 *
 * @module
 */

import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { entriesFor, prng, randInt } from "./_data.ts";

export const CRASH_SEGMENT_BYTES = 32 * 1024;
export const CRASH_MAX_ENTRY = 400;

if (import.meta.main) {
  const [dir, seedArg] = Deno.args;
  const seed = Number(seedArg);
  const rand = prng(seed ^ 0x5eed);
  const log = await FileLogStore.open(dir, { segmentBytes: CRASH_SEGMENT_BYTES });
  const enc = new TextEncoder();
  // Synchronous write: the line is in the pipe before anything else happens.
  const say = (line: string): void => {
    const b = enc.encode(line + "\n");
    for (let done = 0; done < b.length;) done += Deno.stdout.writeSync(b.subarray(done));
  };
  let next = (await log.lastIndex()) + 1;
  const inflight: Promise<void>[] = [];
  while (true) {
    while (inflight.length < 3) {
      const from = next;
      const n = randInt(rand, 1, 64);
      next += n;
      inflight.push(
        log.storeLogs(entriesFor(seed, from, n, CRASH_MAX_ENTRY)).then(() =>
          say(`A ${from + n - 1}`)
        ),
      );
    }
    await inflight.shift();
    if (rand() < 0.05) {
      const first = await log.firstIndex();
      const last = await log.lastIndex();
      if (last - first >= 2) {
        const upto = first + randInt(rand, 0, Math.floor((last - first) / 2));
        await log.deleteRange(first, upto);
        say(`F ${upto + 1}`);
      }
    }
  }
}
