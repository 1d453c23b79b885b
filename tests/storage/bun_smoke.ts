/**
 * Smoke test of the storage layer on Bun (node:fs platform code). Run by
 * bun_smoke_test.ts as `bun run tests/storage/bun_smoke.ts <dir>`; prints
 * `ok ...` on success and exits non-zero on failure.
 *
 * @module
 */

import { runtimeName } from "../../src/platform/runtime.ts";
import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { FileStableStore } from "../../src/storage/file_stable_store.ts";
import { FileSnapshotStore } from "../../src/storage/file_snapshot_store.ts";
import { entriesFor, entryFor, sameEntry } from "./_data.ts";

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`bun smoke: ${what}`);
}

const argv = (globalThis as unknown as { process: { argv: string[] } }).process.argv;
const dir = argv[argv.length - 1];
const SEED = 21;

const log = await FileLogStore.open(`${dir}/log`, { segmentBytes: 4096 });
for (let i = 1; i <= 500; i += 25) await log.storeLogs(entriesFor(SEED, i, 25));
await log.deleteRange(1, 100);
await log.deleteRange(451, 500);
await log.close();
const again = await FileLogStore.open(`${dir}/log`, { segmentBytes: 4096, cacheEntries: 0 });
check((await again.firstIndex()) === 101, `firstIndex ${await again.firstIndex()}`);
check((await again.lastIndex()) === 450, `lastIndex ${await again.lastIndex()}`);
const all = await again.getLogs(101, 450);
check(all.length === 350, `getLogs returned ${all.length}`);
all.forEach((e, k) => check(sameEntry(e, entryFor(SEED, 101 + k)), `entry ${101 + k}`));
const segments = again.stats.segments;
await again.close();

const stable = await FileStableStore.open(`${dir}/stable`);
await stable.setState({ term: 4, vote: "n1", commit: 7 });
await stable.close();
const st = await (await FileStableStore.open(`${dir}/stable`)).getState();
check(st?.term === 4 && st.vote === "n1" && st.commit === 7, `stable state ${JSON.stringify(st)}`);

const snaps = await FileSnapshotStore.open(`${dir}/snap`, { chunkBytes: 1000 });
const sink = await snaps.create({
  index: 450,
  term: 5,
  configuration: { servers: [] },
  configurationIndex: 1,
});
await sink.write(new Uint8Array(5000).fill(3));
const info = await sink.close();
check(await snaps.verify(info.id), "snapshot verifies");

console.log(`ok runtime=${runtimeName} segments=${segments} entries=${all.length}`);
