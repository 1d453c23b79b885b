import assert from "node:assert/strict";
import {
  BackupFormatError,
  type BackupHeader,
  encodeBackupHeader,
  readBackup,
  stateChecksum,
} from "../../src/server/backup_file.ts";
import { fileChunks, writeFileAtomically } from "../../src/server/backup_io.ts";
import { crc32c } from "../../src/storage/crc32c.ts";

function header(state: Uint8Array, over: Partial<BackupHeader> = {}): BackupHeader {
  return {
    format: 1,
    stateFormat: "raftd-kv-1",
    index: 42,
    term: 3,
    configuration: { servers: [{ id: "n1", address: "127.0.0.1:7001", suffrage: "voter" }] },
    configurationIndex: 1,
    size: state.length,
    checksum: stateChecksum(crc32c(state)),
    clusterId: "0123456789abcdef0123456789abcdef",
    server: "n1",
    createdAt: new Date(0).toISOString(),
    version: "test",
    ...over,
  };
}

function file(state: Uint8Array, over: Partial<BackupHeader> = {}): Uint8Array {
  const head = encodeBackupHeader(header(state, over));
  const out = new Uint8Array(head.length + state.length);
  out.set(head);
  out.set(state, head.length);
  return out;
}

/** The bytes in chunks of `size` (1 exercises every boundary). */
async function* chunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function drain(state: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: number[] = [];
  for await (const c of state) parts.push(...c);
  return new Uint8Array(parts);
}

const STATE = new TextEncoder().encode("the state machine's snapshot stream, as stored");

Deno.test("backup file: reads back header and state across any chunking", async () => {
  const bytes = file(STATE);
  for (const size of [1, 7, 64, bytes.length]) {
    const backup = await readBackup(chunks(bytes, size));
    assert.deepEqual(backup.header, header(STATE));
    assert.deepEqual(backup.headerBytes, bytes.subarray(0, bytes.length - STATE.length));
    assert.deepEqual(await drain(backup.state), STATE, `chunks of ${size}`);
  }
  const empty = await readBackup(chunks(file(new Uint8Array(0)), 5));
  assert.equal((await drain(empty.state)).length, 0);
});

Deno.test("backup file: damage anywhere is refused with what is wrong", async () => {
  const bytes = file(STATE);
  const stateAt = bytes.length - STATE.length;
  const flip = (at: number) => {
    const copy = bytes.slice();
    copy[at] ^= 0x40;
    return copy;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty", new Uint8Array(0), /the file is empty/],
    ["not a backup", new TextEncoder().encode("hello world, not a backup"), /not a raftd backup/],
    ["cut in the prefix", bytes.subarray(0, 10), /truncated inside the header/],
    ["cut in the header", bytes.subarray(0, 40), /truncated inside the header/],
    ["header bit flip", flip(30), /the header is damaged: its CRC-32C is/],
    [
      "header length",
      (() => {
        const c = bytes.slice();
        c[8] = 0xff;
        return c;
      })(),
      /claims \d+ bytes, more than the \d+ allowed/,
    ],
    ["cut in the state", bytes.subarray(0, stateAt + 5), /truncated: the header announces/],
    ["state bit flip", flip(stateAt + 3), /the state is damaged: its checksum is crc32c:/],
    ["bytes after the state", new Uint8Array([...bytes, 0]), /more than the \d+ bytes of state/],
  ];
  for (const [what, input, pattern] of cases) {
    const err = await (async () => {
      const backup = await readBackup(chunks(input, 3));
      await drain(backup.state);
    })().then(() => undefined, (e) => e);
    assert.ok(err instanceof BackupFormatError, `${what}: ${err}`);
    assert.match(err.message, pattern, what);
  }
});

Deno.test("backup file: a header that parses but makes no sense is refused", async () => {
  for (
    const [over, pattern] of [
      [{ format: 2 }, /format 2 is not one this raftd reads/],
      [{ index: -1 }, /index must be a non-negative integer/],
      [{ checksum: "md5:abc" }, /checksum must be crc32c:/],
      [{ configuration: { servers: [{ id: "n1" }] } }, /configuration must be/],
      [{ clusterId: 7 }, /clusterId must be a string or null/],
    ] as const
  ) {
    const bytes = file(STATE, over as unknown as Partial<BackupHeader>);
    await assert.rejects(readBackup(chunks(bytes, 16)), pattern);
  }
});

Deno.test("backup io: an atomic write that fails leaves neither the file nor a .part", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/b.snap`;
    await writeFileAtomically(path, chunks(new Uint8Array([1, 2, 3]), 2));
    assert.deepEqual(await drain(fileChunks(path)), new Uint8Array([1, 2, 3]));
    // A failing source: the old file stays, the partial one goes.
    const failing = (async function* () {
      yield new Uint8Array([9, 9]);
      throw new Error("the download broke");
    })();
    await assert.rejects(writeFileAtomically(path, failing), /the download broke/);
    assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
    await assert.rejects(Deno.stat(`${path}.part`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backup file: the state streams through as it arrives, never gathered", async () => {
  const bytes = file(STATE);
  const stateAt = bytes.length - STATE.length;
  const release = Promise.withResolvers<void>();
  let sourceDone = false;
  const source = (async function* () {
    yield bytes.slice(0, stateAt + 10);
    await release.promise;
    yield bytes.slice(stateAt + 10);
    sourceDone = true;
  })();
  const backup = await readBackup(source);
  const it = backup.state[Symbol.asyncIterator]();
  const first = await it.next();
  assert.deepEqual(first.value, STATE.subarray(0, 10));
  assert.equal(sourceDone, false);
  release.resolve();
  const second = await it.next();
  assert.deepEqual(second.value, STATE.subarray(10));
  assert.equal((await it.next()).done, true);
});
