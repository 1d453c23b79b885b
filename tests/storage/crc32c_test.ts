import { strict as assert } from "node:assert";
import { crc32c, crc32cHex, crc32cUpdate } from "../../src/storage/crc32c.ts";
import { prng } from "./_data.ts";

function bitwise(d: Uint8Array): number {
  let c = ~0;
  for (const x of d) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test("crc32c: known vectors (RFC 3720)", () => {
  const enc = new TextEncoder();
  assert.equal(crc32c(enc.encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32cHex(crc32c(enc.encode("123456789"))), "e3069283");
});

Deno.test("crc32c: matches the bitwise definition; incremental equals one-shot", () => {
  const r = prng(42);
  for (let n = 0; n < 300; n++) {
    const d = new Uint8Array(n);
    for (let i = 0; i < n; i++) d[i] = (r() * 256) | 0;
    assert.equal(crc32c(d), bitwise(d), `length ${n}`);
    const cut = Math.floor(r() * (n + 1));
    assert.equal(crc32cUpdate(crc32cUpdate(0, d, 0, cut), d, cut), crc32c(d));
    assert.equal(crc32c(d, 1, Math.max(1, n - 1)), bitwise(d.subarray(1, Math.max(1, n - 1))));
  }
});
