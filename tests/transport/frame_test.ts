import assert from "node:assert/strict";
import { FrameTooLargeError, ProtocolError } from "../../src/transport/errors.ts";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameKind,
  writeFrameHeader,
} from "../../src/transport/frame.ts";
import { seededRandom } from "../../src/transport/memory_transport.ts";

interface Frame {
  kind: number;
  payload: number[];
}

function makeFrames(seed: number, count: number, maxSize: number): Frame[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const size = random() < 0.2 ? 0 : Math.floor(random() * maxSize);
    return {
      kind: Math.floor(random() * 256),
      payload: Array.from({ length: size }, () => Math.floor(random() * 256)),
    };
  });
}

function concat(frames: Frame[]): Uint8Array {
  const parts = frames.map((f) => encodeFrame(f.kind, new Uint8Array(f.payload)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function decodeChunks(chunks: Uint8Array[], max?: number): Frame[] {
  const decoder = new FrameDecoder(max);
  const out: Frame[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    while (decoder.next()) out.push({ kind: decoder.kind, payload: [...decoder.payload] });
  }
  assert.equal(decoder.buffered, 0);
  return out;
}

Deno.test("frame: header layout is u32 big-endian length then u8 kind", () => {
  const frame = encodeFrame(FrameKind.Message, new Uint8Array(0x010203));
  assert.deepEqual([...frame.subarray(0, FRAME_HEADER_BYTES)], [0, 1, 2, 3, 16]);
  const header = new Uint8Array(5);
  writeFrameHeader(header, 0, 255, 0xfffffffe);
  assert.deepEqual([...header], [0xff, 0xff, 0xff, 0xfe, 0xff]);
});

Deno.test("frame: many frames merged in one chunk", () => {
  const frames = makeFrames(1, 200, 300);
  assert.deepEqual(decodeChunks([concat(frames)]), frames);
});

Deno.test("frame: a stream split at every position", () => {
  const frames = makeFrames(2, 6, 12);
  const stream = concat(frames);
  for (let i = 0; i <= stream.length; i++) {
    for (let j = i; j <= stream.length; j++) {
      const chunks = [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)];
      assert.deepEqual(decodeChunks(chunks), frames, `split at ${i}, ${j}`);
    }
  }
});

Deno.test("frame: a stream cut into random pieces, including single bytes", () => {
  const random = seededRandom(3);
  const frames = makeFrames(4, 300, 5000);
  const stream = concat(frames);
  for (let round = 0; round < 20; round++) {
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < stream.length;) {
      const n = random() < 0.3 ? 1 : Math.floor(random() * 9000);
      chunks.push(stream.subarray(at, at + n));
      at += n;
    }
    assert.deepEqual(decodeChunks(chunks), frames);
  }
});

Deno.test("frame: every payload is the caller's own exact-size buffer, never a view of a chunk", () => {
  const stream = concat([{ kind: 1, payload: [1, 2, 3] }, { kind: 2, payload: [4, 5, 6, 7] }]);
  const decoder = new FrameDecoder();
  decoder.push(stream.subarray(0, 15)); // ends inside the second payload
  assert.ok(decoder.next());
  const first = decoder.payload;
  assert.notEqual(first.buffer, stream.buffer);
  assert.equal(first.buffer.byteLength, 3);
  assert.equal(decoder.next(), false);
  // The connection reuses its read buffer: the first payload must not change.
  stream.fill(0, 0, 15);
  assert.deepEqual([...first], [1, 2, 3]);
  decoder.push(stream.subarray(15));
  assert.ok(decoder.next());
  assert.notEqual(decoder.payload.buffer, stream.buffer);
  assert.deepEqual([...decoder.payload], [4, 5, 6, 7]);
});

Deno.test("frame: a header announcing more than the limit is a FrameTooLargeError", () => {
  const decoder = new FrameDecoder(1024);
  decoder.push(encodeFrame(FrameKind.Message, new Uint8Array(1024)));
  assert.ok(decoder.next());
  const header = new Uint8Array(5);
  writeFrameHeader(header, 0, FrameKind.Message, 1025);
  decoder.push(header.subarray(0, 2));
  assert.equal(decoder.next(), false);
  decoder.push(header.subarray(2));
  assert.throws(() => decoder.next(), (e: unknown) => {
    assert.ok(e instanceof FrameTooLargeError && e instanceof ProtocolError);
    assert.equal(e.size, 1025);
    assert.equal(e.limit, 1024);
    return true;
  });
});

Deno.test("frame: invalid limits are RangeErrors", () => {
  assert.throws(() => new FrameDecoder(-1), RangeError);
  assert.throws(() => new FrameDecoder(2 ** 32), RangeError);
});

Deno.test("frame: without copyPayloads a frame within a chunk is a view of it (fresh chunks)", () => {
  const stream = concat([{ kind: 1, payload: [1, 2, 3] }]);
  const decoder = new FrameDecoder(1024, { copyPayloads: false });
  decoder.push(stream);
  assert.ok(decoder.next());
  assert.equal(decoder.payload.buffer, stream.buffer);
  assert.deepEqual([...decoder.payload], [1, 2, 3]);
});
