/**
 * Damaged logs: torn tails are cut back to the last whole record; any other
 * damage is a CorruptionError. Never wrong data, never an untyped error.
 */
import { strict as assert } from "node:assert";
import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { CorruptionError } from "../../src/errors.ts";
import {
  parseSegmentFileName,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
} from "../../src/storage/log_format.ts";
import { entriesFor, entryFor, prng, randInt, sameEntry } from "./_data.ts";

const SEED = 11;
const N = 400;
const SEGMENT_BYTES = 8 * 1024;

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "raftd_logrec_" });
}

function segNames(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".seg")).sort();
}

/** A closed log with entries 1..N in several segments, written in random batches. */
async function buildLog(dir: string, seed = SEED): Promise<void> {
  const rand = prng(seed);
  const log = await FileLogStore.open(dir, { segmentBytes: SEGMENT_BYTES });
  for (let i = 1; i <= N;) {
    const n = Math.min(randInt(rand, 1, 12), N - i + 1);
    await log.storeLogs(entriesFor(SEED, i, n));
    i += n;
  }
  await log.close();
}

async function copyDir(from: string): Promise<string> {
  const to = await tempDir();
  for (const e of Deno.readDirSync(from)) {
    await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
  return to;
}

/** End offsets of the records in the segment starting at `base`. */
function recordEnds(base: number, fileSize: number): number[] {
  const ends: number[] = [];
  let pos = SEGMENT_HEADER_BYTES;
  for (let i = base; pos < fileSize; i++) {
    pos += RECORD_HEADER_BYTES + entryFor(SEED, i).data.length;
    ends.push(pos);
  }
  return ends;
}

/** Opens `dir` and checks that it holds exactly entries 1..last; returns last. */
async function checkPrefix(dir: string, why: string): Promise<number> {
  const log = await FileLogStore.open(dir, { segmentBytes: SEGMENT_BYTES });
  try {
    const last = await log.lastIndex();
    assert.ok(last <= N, `${why}: lastIndex ${last} > ${N}`);
    if (last > 0) assert.equal(await log.firstIndex(), 1, why);
    const all = await log.getLogs(1, N + 10);
    assert.equal(all.length, last, why);
    all.forEach((e, k) => assert.ok(sameEntry(e, entryFor(SEED, k + 1)), `${why}: entry ${k + 1}`));
    assert.equal(await log.getLog(last + 1), undefined, why);
    // The log must accept the next entries and keep them.
    await log.storeLogs(entriesFor(SEED, last + 1, 3));
  } finally {
    await log.close();
  }
  const again = await FileLogStore.open(dir, { segmentBytes: SEGMENT_BYTES });
  try {
    const last = await again.lastIndex();
    const all = await again.getLogs(1, last);
    all.forEach((e, k) =>
      assert.ok(sameEntry(e, entryFor(SEED, k + 1)), `${why}: reopened ${k + 1}`)
    );
    return last - 3;
  } finally {
    await again.close();
  }
}

Deno.test("recovery: torn tails (truncation, zeros, garbage) are cut to the last whole record", async () => {
  const master = await tempDir();
  try {
    await buildLog(master);
    const names = segNames(master);
    assert.ok(names.length >= 4, `expected several segments, got ${names.length}`);
    const lastName = names.at(-1) as string;
    const lastBase = parseSegmentFileName(lastName) as number;
    const lastSize = Deno.statSync(`${master}/${lastName}`).size;
    const ends = recordEnds(lastBase, lastSize);
    assert.equal(lastBase + ends.length - 1, N);
    const rand = prng(12345);
    for (let trial = 0; trial < 40; trial++) {
      const dir = await copyDir(master);
      const path = `${dir}/${lastName}`;
      try {
        const mode = trial % 4;
        let cut = lastSize;
        if (mode === 0 || mode === 3) {
          cut = randInt(rand, 0, lastSize - 1);
          await Deno.truncate(path, cut);
        }
        if (mode === 1 || mode === 3) {
          const f = await Deno.open(path, { append: true });
          await f.write(new Uint8Array(randInt(rand, 1, 5000)));
          f.close();
        }
        if (mode === 2) {
          const junk = new Uint8Array(randInt(rand, 1, 5000));
          for (let i = 0; i < junk.length; i++) junk[i] = randInt(rand, 0, 255);
          const f = await Deno.open(path, { append: true });
          await f.write(junk);
          f.close();
        }
        const kept = ends.filter((e) => e <= cut).length;
        const want = cut < SEGMENT_HEADER_BYTES ? lastBase - 1 : lastBase + kept - 1;
        const why = `trial ${trial} mode ${mode} cut ${cut}`;
        assert.equal(await checkPrefix(dir, why), want, why);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  } finally {
    await Deno.remove(master, { recursive: true });
  }
});

Deno.test("recovery: random bit flips give a valid prefix or CorruptionError", async () => {
  const master = await tempDir();
  try {
    await buildLog(master);
    const names = segNames(master);
    const sizes = names.map((n) => Deno.statSync(`${master}/${n}`).size);
    const total = sizes.reduce((a, b) => a + b, 0);
    const rand = prng(777);
    let corrupt = 0;
    let prefix = 0;
    for (let trial = 0; trial < 60; trial++) {
      const dir = await copyDir(master);
      try {
        // Pick a byte uniformly over all segment bytes; flip one bit (or smash a range).
        // Odd trials aim at the last segment, where torn-tail logic applies.
        let at = randInt(rand, 0, total - 1);
        let k = 0;
        while (at >= sizes[k]) at -= sizes[k++];
        if (trial % 2 === 1) {
          k = names.length - 1;
          at = randInt(rand, 0, sizes[k] - 1);
        }
        const path = `${dir}/${names[k]}`;
        const bytes = Deno.readFileSync(path);
        if (trial % 5 === 4) {
          for (let i = at; i < Math.min(bytes.length, at + 40); i++) {
            bytes[i] = randInt(rand, 0, 255);
          }
        } else {
          bytes[at] ^= 1 << randInt(rand, 0, 7);
        }
        Deno.writeFileSync(path, bytes);
        const why = `trial ${trial}: ${names[k]} offset ${at}`;
        try {
          await checkPrefix(dir, why);
          prefix++;
          assert.equal(
            k,
            names.length - 1,
            `${why}: damage outside the last segment went unnoticed`,
          );
        } catch (e) {
          if (!(e instanceof CorruptionError)) throw e;
          assert.ok(
            e.file?.endsWith(".seg"),
            `${why}: CorruptionError names the file: ${e.message}`,
          );
          assert.equal(typeof e.offset, "number", `${why}: names the offset`);
          corrupt++;
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
    assert.ok(corrupt > 0, "some flips are detected as corruption");
    assert.equal(corrupt + prefix, 60);
  } finally {
    await Deno.remove(master, { recursive: true });
  }
});

async function singleSegmentLog(dir: string, batches: number[]): Promise<number[]> {
  const log = await FileLogStore.open(dir);
  let i = 1;
  for (const n of batches) {
    await log.storeLogs(entriesFor(SEED, i, n));
    i += n;
  }
  await log.close();
  return recordEnds(1, Deno.statSync(`${dir}/${segNames(dir)[0]}`).size);
}

Deno.test("recovery: damage followed by a later write is corruption, not a torn tail", async () => {
  const dir = await tempDir();
  try {
    const ends = await singleSegmentLog(dir, [10, 10]);
    const path = `${dir}/${segNames(dir)[0]}`;
    const bytes = Deno.readFileSync(path);
    const off = ends[3]; // record of entry 5, in the first write
    bytes[off + 10] ^= 0x40;
    Deno.writeFileSync(path, bytes);
    const err = await FileLogStore.open(dir).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(err instanceof CorruptionError, `expected CorruptionError, got ${err}`);
    assert.equal(err.offset, off);
    assert.ok(err.file?.endsWith(segNames(dir)[0]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recovery: damage inside the last write is a torn write: cut before it", async () => {
  const dir = await tempDir();
  try {
    const ends = await singleSegmentLog(dir, [10, 10]);
    const path = `${dir}/${segNames(dir)[0]}`;
    const bytes = Deno.readFileSync(path);
    bytes[ends[14] + 40] ^= 0x01; // entry 16's data, second write; 17..20 stay valid
    Deno.writeFileSync(path, bytes);
    const log = await FileLogStore.open(dir);
    assert.equal(await log.lastIndex(), 15);
    assert.equal(Deno.statSync(path).size, ends[14], "the file is cut at the bad record");
    await log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recovery: damage in a sealed segment is corruption", async () => {
  const dir = await tempDir();
  try {
    await buildLog(dir);
    const name = segNames(dir)[1];
    const path = `${dir}/${name}`;
    const bytes = Deno.readFileSync(path);
    bytes[bytes.length - 1] ^= 0x80; // last byte of its last record
    Deno.writeFileSync(path, bytes);
    await assert.rejects(FileLogStore.open(dir), (e: unknown) => {
      assert.ok(e instanceof CorruptionError);
      assert.ok(e.file?.endsWith(name));
      return true;
    });
    // A missing middle segment is a gap.
    Deno.writeFileSync(path, new Uint8Array(0));
    Deno.removeSync(path);
    await assert.rejects(FileLogStore.open(dir), CorruptionError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recovery: a half-created last segment is removed; a damaged header with records is not", async () => {
  const dir = await tempDir();
  try {
    await buildLog(dir);
    const names = segNames(dir);
    const lastBase = parseSegmentFileName(names.at(-1) as string) as number;
    const lastSize = Deno.statSync(`${dir}/${names.at(-1)}`).size;
    const lastIndex = lastBase + recordEnds(lastBase, lastSize).length - 1;
    // A new segment whose header never reached the disk.
    const next = `${dir}/${String(lastIndex + 1).padStart(20, "0")}.seg`;
    Deno.writeFileSync(next, new Uint8Array(20));
    let log = await FileLogStore.open(dir);
    assert.equal(await log.lastIndex(), N);
    await log.close();
    assert.ok(!segNames(dir).includes(next.split("/").at(-1) as string), "removed");
    // Damage the header of the real last segment (records follow it).
    const path = `${dir}/${names.at(-1)}`;
    const bytes = Deno.readFileSync(path);
    bytes[3] ^= 0xff;
    Deno.writeFileSync(path, bytes);
    await assert.rejects(FileLogStore.open(dir), CorruptionError);
    bytes[3] ^= 0xff;
    Deno.writeFileSync(path, bytes);
    log = await FileLogStore.open(dir);
    assert.equal(await log.lastIndex(), N);
    await log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recovery: a damaged meta file is corruption", async () => {
  const dir = await tempDir();
  try {
    await buildLog(dir);
    const log = await FileLogStore.open(dir, { segmentBytes: SEGMENT_BYTES });
    await log.deleteRange(1, 50);
    await log.close();
    const meta = Deno.readFileSync(`${dir}/meta`);
    meta[10] ^= 1;
    Deno.writeFileSync(`${dir}/meta`, meta);
    await assert.rejects(FileLogStore.open(dir), CorruptionError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recovery: a record damaged on disk after open is a CorruptionError on read", async () => {
  const dir = await tempDir();
  try {
    await buildLog(dir);
    const log = await FileLogStore.open(dir, { cacheEntries: 0 });
    const name = segNames(dir)[0];
    const bytes = Deno.readFileSync(`${dir}/${name}`);
    bytes[SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES] ^= 4; // data of entry 1 (if any) or entry 2's header
    Deno.writeFileSync(`${dir}/${name}`, bytes);
    await assert.rejects(log.getLogs(1, 5), CorruptionError);
    await log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
