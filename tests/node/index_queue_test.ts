import assert from "node:assert/strict";
import fc from "fast-check";
import { IndexQueue } from "../../src/node/index_queue.ts";

type Op =
  | { kind: "add"; gap: number }
  | { kind: "addOld"; back: number }
  | { kind: "delete"; pick: number }
  | { kind: "deleteWhileIterating"; every: number }
  | { kind: "clear" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({ kind: fc.constant("add" as const), gap: fc.nat({ max: 3 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("addOld" as const), back: fc.nat({ max: 30 }) }),
  },
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant("delete" as const), pick: fc.nat({ max: 40 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("deleteWhileIterating" as const),
      every: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const) }) },
);

Deno.test("IndexQueue behaves like a Map kept in index order", () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1500, maxLength: 4000 }), (ops) => {
      const q = new IndexQueue<string>();
      const model = new Map<number, string>();
      let next = 1;
      let tag = 0;
      for (const op of ops) {
        if (op.kind === "add") {
          next += op.gap;
          const v = `v${tag++}`;
          q.set(next, v);
          model.set(next, v);
          next++;
        } else if (op.kind === "addOld") {
          const index = Math.max(1, next - op.back);
          const v = `v${tag++}`;
          q.set(index, v);
          model.set(index, v);
        } else if (op.kind === "delete") {
          const keys = [...model.keys()].sort((a, b) => a - b);
          const index = keys.length > 0 && op.pick < 20
            ? keys[op.pick % keys.length]
            : next - op.pick;
          q.delete(index);
          model.delete(index);
        } else if (op.kind === "deleteWhileIterating") {
          let k = 0;
          for (const [index] of q) {
            if (k++ % op.every === 0) {
              q.delete(index);
              model.delete(index);
            }
          }
        } else {
          q.clear();
          model.clear();
        }
        const sorted = [...model.entries()].sort((a, b) => a[0] - b[0]);
        assert.deepEqual([...q], sorted);
        assert.equal(q.size, model.size);
        for (let i = Math.max(1, next - 40); i <= next; i++) assert.equal(q.get(i), model.get(i));
      }
    }),
    { numRuns: 25 },
  );
});

Deno.test("IndexQueue: a long run through the front keeps lookups right after compaction", () => {
  const q = new IndexQueue<number>();
  for (let i = 1; i <= 5000; i++) q.set(i, i * 10);
  for (let i = 1; i <= 3000; i++) {
    assert.equal(q.get(i), i * 10);
    q.delete(i);
  }
  for (let i = 5001; i <= 6000; i++) q.set(i, i * 10); // compacts on the way
  assert.equal(q.size, 3000);
  assert.equal(q.get(3000), undefined);
  for (let i = 3001; i <= 6000; i += 7) assert.equal(q.get(i), i * 10);
  assert.deepEqual([...q].slice(0, 2), [[3001, 30010], [3002, 30020]]);
});
