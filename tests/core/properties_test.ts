/**
 * Property tests (fast-check) of the core's building blocks: quorum
 * arithmetic, the in-flight window, membership changes and their encoding,
 * the in-memory log, and the restart invariant term >= last log term.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { RaftLog } from "../../src/core/log.ts";
import {
  applyChange,
  type ConfigurationChange,
  decodeConfiguration,
  encodeConfiguration,
  quorumValue,
  voterIds,
} from "../../src/core/membership.ts";
import { Inflights } from "../../src/core/progress.ts";
import { RaftCore } from "../../src/core/raft_core.ts";
import { type Configuration, type Entry, EntryType } from "../../src/core/types.ts";
import { TEST_OPTIONS, votersOf } from "./harness.ts";

Deno.test("quorumValue is the highest value a majority has reached", () => {
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 9 }), (values) => {
      const q = quorumValue(values);
      const majority = Math.floor(values.length / 2) + 1;
      assert.ok(values.filter((v) => v >= q).length >= majority, "a majority has q");
      assert.ok(values.filter((v) => v > q).length < majority, "no majority has more than q");
    }),
  );
});

Deno.test("Inflights behaves like a bounded FIFO of increasing indexes", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("add" as const), gap: fc.integer({ min: 1, max: 5 }) }),
    fc.record({ kind: fc.constant("free" as const), back: fc.nat({ max: 20 }) }),
    fc.record({ kind: fc.constant("first" as const) }),
    fc.record({ kind: fc.constant("reset" as const) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 60 }), (cap, ops) => {
      const w = new Inflights(cap);
      let model: number[] = [];
      let last = 0;
      for (const o of ops) {
        if (o.kind === "add") {
          if (model.length === cap) {
            assert.throws(() => w.add(last + o.gap), RangeError);
            continue;
          }
          last += o.gap;
          w.add(last);
          model.push(last);
        } else if (o.kind === "free") {
          const upTo = last - o.back;
          w.freeLE(upTo);
          while (model.length > 0 && model[0] <= upTo) model.shift();
        } else if (o.kind === "first") {
          w.freeFirstOne();
          model.shift();
        } else {
          w.reset();
          model = [];
        }
        assert.equal(w.count(), model.length);
        assert.equal(w.full(), model.length === cap);
      }
    }),
  );
});

const IDS = ["a", "b", "c", "d", "e"];
const changeArb: fc.Arbitrary<ConfigurationChange> = fc.oneof(
  fc.record({
    op: fc.constant("addVoter" as const),
    id: fc.constantFrom(...IDS),
    address: fc.constant("x:1"),
  }),
  fc.record({
    op: fc.constant("addNonvoter" as const),
    id: fc.constantFrom(...IDS),
    address: fc.constant("x:2"),
  }),
  fc.record({ op: fc.constant("promote" as const), id: fc.constantFrom(...IDS) }),
  fc.record({ op: fc.constant("demote" as const), id: fc.constantFrom(...IDS) }),
  fc.record({ op: fc.constant("remove" as const), id: fc.constantFrom(...IDS) }),
);

Deno.test("membership changes keep a voter, unique ids, and survive encoding", () => {
  fc.assert(
    fc.property(fc.array(changeArb, { maxLength: 30 }), (changes) => {
      let conf: Configuration = votersOf(["a"]);
      for (const change of changes) {
        try {
          conf = applyChange(conf, change);
        } catch (e) {
          assert.ok(e instanceof TypeError, `only TypeError, got ${e}`);
          continue;
        }
        assert.ok(voterIds(conf).length >= 1, "at least one voter");
        const ids = conf.servers.map((s) => s.id);
        assert.equal(new Set(ids).size, ids.length, "ids unique");
        if (change.op === "remove") assert.ok(!ids.includes(change.id));
        if (change.op === "promote") assert.ok(voterIds(conf).includes(change.id));
        assert.deepEqual(decodeConfiguration(encodeConfiguration(conf)), conf);
      }
    }),
  );
});

/** A random history of leaders appending to one log: (first index offset back, count, term bump). */
const appendsArb = fc.array(
  fc.record({
    back: fc.nat({ max: 4 }),
    count: fc.integer({ min: 1, max: 4 }),
    bump: fc.boolean(),
  }),
  { maxLength: 25 },
);

Deno.test("RaftLog: appends keep the log contiguous with non-decreasing terms; conflict search agrees", () => {
  fc.assert(
    fc.property(appendsArb, (appends) => {
      const log = new RaftLog(0, 0);
      let term = 1;
      for (const a of appends) {
        if (a.bump) term++;
        const first = Math.max(log.committed + 1, log.lastIndex() + 1 - a.back);
        const entries: Entry[] = [];
        for (let i = 0; i < a.count; i++) {
          entries.push({ index: first + i, term, type: EntryType.Normal, data: new Uint8Array() });
        }
        const expected = entries.find((e) => log.term(e.index) !== e.term)?.index ?? 0;
        assert.equal(log.findConflict(entries), expected);
        log.append(entries);
        assert.equal(log.lastIndex(), first + a.count - 1);
        assert.equal(log.findConflict(entries), 0, "everything just appended matches");
        for (let i = log.firstIndex() + 1; i <= log.lastIndex(); i++) {
          assert.ok(log.term(i)! >= log.term(i - 1)!, "terms never decrease along the log");
        }
        const probe = log.findConflictByTerm(log.lastIndex(), term - 1);
        assert.ok(probe.term <= term - 1 && probe.index <= log.lastIndex());
        assert.equal(log.term(probe.index), probe.term);
      }
    }),
  );
});

Deno.test("a restarted core's term is never below its last log term", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 12 }),
      fc.nat({ max: 20 }),
      (bumps, storedTerm) => {
        const entries: Entry[] = [
          {
            index: 1,
            term: 1,
            type: EntryType.Configuration,
            data: encodeConfiguration(votersOf(["n1", "n2"])),
          },
        ];
        let t = 1;
        for (const b of bumps) {
          t += b - 1;
          entries.push({
            index: entries.length + 1,
            term: t,
            type: EntryType.Normal,
            data: new Uint8Array(),
          });
        }
        const core = new RaftCore({ ...TEST_OPTIONS, id: "n1", random: () => 0.5 }, {
          hardState: { term: storedTerm, vote: "", commit: 0 },
          entries,
        });
        assert.ok(core.term >= core.lastTerm);
        assert.equal(core.term, Math.max(storedTerm, t));
        if (t > storedTerm) {
          assert.equal(core.vote, "n1");
          assert.equal(core.ready().hardState?.term, t, "written back at once");
        }
      },
    ),
  );
});
