import { strict as assert } from "node:assert";
import { KvFsm } from "../../src/server/kv_fsm.ts";
import {
  decodeCommand,
  encodeDelete,
  encodePut,
  encodeRemoveMember,
  encodeSetMember,
  KvOp,
} from "../../src/server/kv_command.ts";
import {
  checkedKvSnapshot,
  readKvSnapshot,
  writeKvSnapshot,
} from "../../src/server/kv_snapshot.ts";
import { CorruptionError } from "../../src/errors.ts";

const te = new TextEncoder();
const td = new TextDecoder();

function entry(index: number, data: Uint8Array) {
  return { index, term: 1, data };
}

async function persistToChunks(fsm: KvFsm): Promise<Uint8Array[]> {
  const snap = await fsm.snapshot();
  const chunks: Uint8Array[] = [];
  try {
    await snap.persist({ write: (c) => Promise.resolve(void chunks.push(c)) });
  } finally {
    snap.release();
  }
  return chunks;
}

async function* stream(chunks: Uint8Array[]) {
  for (const c of chunks) yield c;
}

/** Re-splits a byte stream into pieces of `size` bytes, to exercise boundaries. */
function rechunk(chunks: Uint8Array[], size: number): Uint8Array[] {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  const out: Uint8Array[] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.slice(i, i + size));
  return out;
}

Deno.test("commands round-trip through MessagePack", () => {
  const put = decodeCommand(encodePut("k/ü", te.encode("v"), 5));
  assert.equal(put.op, KvOp.Put);
  if (put.op !== KvOp.Put) return;
  assert.equal(put.key, "k/ü");
  assert.equal(td.decode(put.value), "v");
  assert.equal(put.cas, 5);
  assert.deepEqual(decodeCommand(encodeDelete("k")), { op: KvOp.Delete, key: "k", cas: undefined });
  assert.deepEqual(decodeCommand(encodeSetMember("n1", "h:1")), {
    op: KvOp.SetMember,
    id: "n1",
    http: "h:1",
  });
  assert.deepEqual(decodeCommand(encodeRemoveMember("n1")), { op: KvOp.RemoveMember, id: "n1" });
  assert.throws(() => decodeCommand(new Uint8Array([0xc1])), TypeError);
  assert.throws(() => encodePut("k", new Uint8Array(), -2), RangeError);
});

Deno.test("put, delete and cas on the modify index", () => {
  const fsm = new KvFsm();
  assert.deepEqual(fsm.apply(entry(1, encodePut("a", te.encode("1"), 0))), { ok: true });
  assert.deepEqual(fsm.apply(entry(2, encodePut("a", te.encode("2"), 0))), {
    ok: false,
    current: 1,
  });
  assert.deepEqual(fsm.apply(entry(3, encodePut("a", te.encode("3"), 1))), { ok: true });
  const a = fsm.get("a");
  assert.equal(td.decode(a?.value), "3");
  assert.equal(a?.createIndex, 1);
  assert.equal(a?.modifyIndex, 3);
  assert.deepEqual(fsm.apply(entry(4, encodeDelete("a", 1))), { ok: false, current: 3 });
  assert.deepEqual(fsm.apply(entry(5, encodeDelete("a", 3))), { ok: true });
  assert.equal(fsm.get("a"), undefined);
  assert.deepEqual(fsm.apply(entry(6, encodeDelete("missing"))), { ok: true });
  // Garbage is skipped identically on every node.
  assert.deepEqual(fsm.apply(entry(7, new Uint8Array([1, 2, 3]))), { ok: true });
  assert.equal(fsm.lastIndex, 7);
  fsm.apply(entry(8, encodePut("b/2", te.encode(""))));
  fsm.apply(entry(9, encodePut("b/1", te.encode(""))));
  fsm.apply(entry(10, encodePut("c", te.encode(""))));
  assert.deepEqual(fsm.keys("b/"), ["b/1", "b/2"]);
  assert.deepEqual(fsm.keys("", 2), ["b/1", "b/2"]);
  assert.equal(fsm.size, 3);
});

Deno.test("member addresses are replicated state", () => {
  let changes = 0;
  const fsm = new KvFsm({ onMembersChange: () => changes++ });
  fsm.apply(entry(1, encodeSetMember("n1", "127.0.0.1:8001")));
  fsm.apply(entry(2, encodeSetMember("n1", "127.0.0.1:8001")));
  fsm.apply(entry(3, encodeSetMember("n2", "127.0.0.1:8002")));
  assert.equal(fsm.memberHttp("n1"), "127.0.0.1:8001");
  assert.equal(changes, 2);
  fsm.apply(entry(4, encodeRemoveMember("n1")));
  assert.equal(fsm.memberHttp("n1"), undefined);
  assert.deepEqual([...fsm.members()], [["n2", "127.0.0.1:8002"]]);
});

Deno.test("snapshot is a point-in-time copy and restores exactly", async () => {
  const fsm = new KvFsm();
  fsm.apply(entry(1, encodePut("x", te.encode("before"))));
  fsm.apply(entry(2, encodeSetMember("n1", "h1")));
  const snap = await fsm.snapshot();
  fsm.apply(entry(3, encodePut("x", te.encode("after"))));
  fsm.apply(entry(4, encodePut("y", te.encode("new"))));
  const chunks: Uint8Array[] = [];
  await snap.persist({ write: (c) => Promise.resolve(void chunks.push(c)) });
  snap.release();
  await assert.rejects(snap.persist({ write: () => Promise.resolve() }));

  const copy = new KvFsm();
  copy.apply(entry(1, encodePut("stale", te.encode("gone"))));
  await copy.restore(stream(chunks));
  assert.equal(td.decode(copy.get("x")?.value), "before");
  assert.equal(copy.get("y"), undefined);
  assert.equal(copy.get("stale"), undefined);
  assert.equal(copy.memberHttp("n1"), "h1");
});

Deno.test("a large state streams in bounded chunks and parses across any boundary", async () => {
  const fsm = new KvFsm();
  let index = 0;
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  for (let i = 0; i < 20_000; i++) {
    fsm.apply(entry(++index, encodePut(`key-${i}-ключ`, te.encode(`value ${i}`))));
  }
  fsm.apply(entry(++index, encodePut("big", big)));
  fsm.apply(entry(++index, encodePut("empty", new Uint8Array())));
  fsm.apply(entry(++index, encodeSetMember("n1", "127.0.0.1:8001")));
  const chunks = await persistToChunks(fsm);
  assert.ok(chunks.length > 5, `expected many chunks, got ${chunks.length}`);
  for (const c of chunks) assert.ok(c.length <= big.length, `chunk of ${c.length} bytes`);
  assert.ok(chunks.filter((c) => c.length > 64 * 1024).length <= 1);

  for (const pieces of [chunks, rechunk(chunks, 7), rechunk(chunks, 65_537)]) {
    const copy = new KvFsm();
    await copy.restore(stream(pieces));
    assert.equal(copy.size, fsm.size);
    for (const i of [0, 1, 9_999, 19_999]) {
      const k = `key-${i}-ключ`;
      assert.deepEqual(copy.get(k), fsm.get(k));
    }
    assert.deepEqual(copy.get("big")?.value, big);
    assert.equal(copy.get("empty")?.value.length, 0);
    assert.equal(copy.memberHttp("n1"), "127.0.0.1:8001");
  }
});

Deno.test("malformed or truncated snapshots are refused", async () => {
  const fsm = new KvFsm();
  fsm.apply(entry(1, encodePut("a", te.encode("1"))));
  const whole = rechunk(await persistToChunks(fsm), 1 << 20)[0];
  await assert.rejects(readKvSnapshot(stream([whole.slice(0, whole.length - 3)])), /truncated/);
  await assert.rejects(readKvSnapshot(stream([te.encode("NOTASNAPSHOT")])), /bad magic/);
  await assert.rejects(readKvSnapshot(stream([])), /truncated/);
  await assert.rejects(readKvSnapshot(stream([whole, new Uint8Array([1])])), /after the end/);
  const badTag = whole.slice();
  badTag[8] = 9;
  await assert.rejects(readKvSnapshot(stream([badTag])), /unknown record tag 9/);
  // An empty state is valid.
  const chunks: Uint8Array[] = [];
  await writeKvSnapshot([], [], { write: (c) => Promise.resolve(void chunks.push(c)) });
  const state = await readKvSnapshot(stream(chunks));
  assert.equal(state.items.size, 0);
});

Deno.test("damaged snapshot bytes are a CorruptionError so the node can fall back", async () => {
  const fsm = new KvFsm();
  fsm.apply(entry(1, encodePut("key", te.encode("value"))));
  const whole = rechunk(await persistToChunks(fsm), 1 << 20)[0];
  // A key that is no longer valid UTF-8 (the decoder's TypeError must not escape as is).
  const badUtf8 = whole.slice();
  badUtf8[8 + 25] = 0xff;
  await assert.rejects(readKvSnapshot(stream([badUtf8])), (e: unknown) => {
    assert.ok(e instanceof CorruptionError, `expected a CorruptionError, got ${e}`);
    assert.match((e as Error).message, /KV snapshot is malformed/);
    return true;
  });
  const badTag = whole.slice();
  badTag[8] = 9;
  await assert.rejects(readKvSnapshot(stream([badTag])), CorruptionError);
  // When the source itself reports damage at its end (a failed checksum that
  // names the file), that error wins over the parse error.
  const fromStore = new CorruptionError("checksum mismatch", { file: "/d/state.bin" });
  let drained = false;
  async function* source() {
    yield badUtf8;
    yield new Uint8Array([1, 2, 3]);
    drained = true;
    throw fromStore;
  }
  await assert.rejects(readKvSnapshot(source()), (e: unknown) => e === fromStore);
  assert.ok(drained);
});

Deno.test("checkedKvSnapshot passes a snapshot through unchanged and stops garbage", async () => {
  const fsm = new KvFsm();
  fsm.apply(entry(1, encodePut("a", te.encode("1"))));
  fsm.apply(entry(2, encodePut("b", new Uint8Array(100_000))));
  const chunks = rechunk(await persistToChunks(fsm), 1000);
  const passed: Uint8Array[] = [];
  for await (const c of checkedKvSnapshot(stream(chunks))) passed.push(c);
  assert.deepEqual(passed, chunks);

  const whole = rechunk(chunks, 1 << 20)[0];
  const cases: [Uint8Array[], RegExp][] = [
    [[te.encode("NOTASNAPSHOT")], /bad magic/],
    [[whole.slice(0, whole.length - 3)], /truncated/],
    [[whole, new Uint8Array([1])], /after the end/],
    [[], /truncated/],
  ];
  for (const [input, pattern] of cases) {
    const seen: Uint8Array[] = [];
    await assert.rejects(async () => {
      for await (const c of checkedKvSnapshot(stream(input))) seen.push(c);
    }, (e: unknown) => e instanceof CorruptionError && pattern.test(e.message));
  }
  // A stranger's garbage is refused at its first chunk, before more is stored.
  let pulled = 0;
  async function* endless() {
    for (;;) {
      pulled++;
      yield new Uint8Array(1024).fill(7);
    }
  }
  await assert.rejects(async () => {
    for await (const _ of checkedKvSnapshot(endless())) { /* stored */ }
  }, /bad magic/);
  assert.equal(pulled, 1);
});
