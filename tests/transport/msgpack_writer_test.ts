import assert from "node:assert/strict";
import { Encoder } from "@msgpack/msgpack";
import { MsgpackWriter } from "../../src/transport/msgpack_writer.ts";

Deno.test("MsgpackWriter writes every value in the form @msgpack/msgpack picks", () => {
  const reference = new Encoder();
  const w = new MsgpackWriter(4); // starts small: every write may grow it
  const numbers = [
    0,
    1,
    127,
    128,
    255,
    256,
    65_535,
    65_536,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 50,
    2 ** 53 - 1,
    -1,
    -32,
    -33,
    -128,
    -129,
    -32_768,
    -32_769,
    -(2 ** 31),
    -(2 ** 31) - 1,
    -(2 ** 40),
    1.5,
    -0.25,
    2 ** 60,
  ];
  for (const n of numbers) {
    w.reset();
    w.number(n);
    assert.deepEqual(w.bytes(), reference.encode(n), `number ${n}`);
  }
  for (const len of [0, 1, 31, 32, 255, 256, 65_535, 65_536]) {
    for (const ch of ["a", "é", "✓"]) {
      const s = ch.repeat(len);
      w.reset();
      w.string(s);
      assert.deepEqual(w.bytes(), reference.encode(s), `string of ${len} ${ch}`);
    }
    const b = new Uint8Array(len).fill(7);
    w.reset();
    w.binary(b);
    assert.deepEqual(w.bytes(), reference.encode(b), `binary of ${len}`);
    w.reset();
    w.arrayHeader(len);
    for (let i = 0; i < len; i++) w.boolean(i % 2 === 0);
    assert.deepEqual(
      w.bytes(),
      reference.encode(Array.from({ length: len }, (_, i) => i % 2 === 0)),
      `array of ${len}`,
    );
  }
});
