import assert from "node:assert/strict";
import fc from "fast-check";
import { TermIndex } from "../../src/core/term_index.ts";

/** The obvious model: one term per index. */
class NaiveTerms {
  prevIndex: number;
  prevTerm: number;
  terms: number[] = []; // terms[k] is the term of prevIndex + 1 + k

  constructor(prevIndex: number, prevTerm: number) {
    this.prevIndex = prevIndex;
    this.prevTerm = prevTerm;
  }

  get last(): number {
    return this.prevIndex + this.terms.length;
  }

  term(i: number): number | undefined {
    if (i === this.prevIndex) return this.prevTerm;
    if (i < this.prevIndex || i > this.last) return undefined;
    return this.terms[i - this.prevIndex - 1];
  }

  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = Math.min(index, this.last); i > this.prevIndex; i--) {
      const t = this.term(i)!;
      if (t <= term) return { index: i, term: t };
    }
    return { index: this.prevIndex, term: this.prevTerm };
  }
}

type Op =
  | { kind: "append"; count: number; bump: number }
  | { kind: "truncate"; back: number }
  | { kind: "compact"; ahead: number }
  | { kind: "reset"; ahead: number; bump: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      count: fc.integer({ min: 1, max: 6 }),
      bump: fc.nat({ max: 2 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("truncate" as const), back: fc.nat({ max: 8 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("compact" as const), ahead: fc.nat({ max: 8 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("reset" as const),
      ahead: fc.nat({ max: 5 }),
      bump: fc.nat({ max: 2 }),
    }),
  },
);

Deno.test("TermIndex answers term(), lastTerm and findConflictByTerm like a term per entry", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), fc.nat({ max: 5 }), (ops, start) => {
      const index = new TermIndex(start, start === 0 ? 0 : 1);
      const model = new NaiveTerms(start, start === 0 ? 0 : 1);
      let term = Math.max(1, model.prevTerm);
      for (const op of ops) {
        if (op.kind === "append") {
          term += op.bump;
          for (let k = 0; k < op.count; k++) {
            index.append(model.last + 1, term);
            model.terms.push(term);
          }
        } else if (op.kind === "truncate") {
          const to = Math.max(model.prevIndex, model.last - op.back);
          index.truncateAfter(to);
          model.terms.length = to - model.prevIndex;
          term = Math.max(term, model.term(model.last)!);
        } else if (op.kind === "compact") {
          const to = Math.min(model.last, model.prevIndex + op.ahead);
          index.compactTo(to);
          if (to > model.prevIndex) {
            model.prevTerm = model.term(to)!;
            model.terms = model.terms.slice(to - model.prevIndex);
            model.prevIndex = to;
          }
        } else {
          const to = model.last + op.ahead;
          term += op.bump;
          index.reset(to, term);
          model.prevIndex = to;
          model.prevTerm = term;
          model.terms = [];
        }
        assert.equal(index.prevIndex, model.prevIndex);
        assert.equal(index.prevTerm, model.prevTerm);
        assert.equal(index.lastIndex, model.last);
        assert.equal(index.lastTerm, model.term(model.last));
        for (let i = model.prevIndex - 2; i <= model.last + 2; i++) {
          assert.equal(index.term(i), model.term(i), `term(${i})`);
        }
        for (let i = model.prevIndex; i <= model.last + 1; i++) {
          for (let t = 0; t <= term + 1; t++) {
            assert.deepEqual(index.findConflictByTerm(i, t), model.findConflictByTerm(i, t));
          }
        }
        // One run per change of term, never more.
        let changes = 0;
        for (let k = 0; k < model.terms.length; k++) {
          if (k === 0 || model.terms[k] !== model.terms[k - 1]) changes++;
        }
        assert.ok(index.runCount <= changes, `${index.runCount} runs for ${changes} terms`);
      }
    }),
  );
});

Deno.test("TermIndex holds a million entries of a few terms in a few runs", () => {
  const index = new TermIndex(0, 0);
  for (let i = 1; i <= 1_000_000; i++) index.append(i, 1 + Math.floor(i / 300_000));
  assert.equal(index.runCount, 4);
  assert.equal(index.term(299_999), 1);
  assert.equal(index.term(300_000), 2);
  assert.equal(index.term(1_000_000), 4);
  index.compactTo(650_000);
  assert.equal(index.runCount, 2);
  assert.equal(index.prevTerm, 3);
  assert.equal(index.term(649_999), undefined);
});

Deno.test("TermIndex refuses what no log can hold", () => {
  const index = new TermIndex(0, 0);
  index.append(1, 2);
  assert.throws(() => index.append(3, 2), /expected index 2, got 3/);
  assert.throws(() => index.append(2, 1), /terms never decrease.*term 1 after term 2/);
  assert.throws(() => index.compactTo(5), /beyond last index 1/);
  index.compactTo(1);
  assert.throws(() => index.truncateAfter(0), /below the compaction point 1/);
});
