/**
 * A planted bug in each kind of client operation is caught by the
 * whole-node simulation, so none of its checks passes vacuously: the
 * linearizability check of the KV history (writes, reads, restores, and the
 * outcome a failed write reports), the stale-leader check of reads and
 * `verifyLeader()`, and the checks of leadership transfers and membership
 * changes. Each bug is planted by replacing a method of the real node for
 * the duration of one test, on the seeds' own parameters.
 */

import assert from "node:assert/strict";
import { LeadershipLostError, NotLeaderError, TimeoutError } from "../../src/errors.ts";
import { LeaseClock } from "../../src/node/lease.ts";
import { type LeadershipView, PendingOperations } from "../../src/node/pending.ts";
import { Raft } from "../../src/raft.ts";
import { runSimulation, type SimOptions } from "./simulation.ts";

/** Replace `target[name]` while `fn` runs. */
async function planted<T extends object, K extends keyof T>(
  target: T,
  name: K,
  replacement: (original: T[K]) => T[K],
  fn: () => Promise<void>,
): Promise<void> {
  const original = target[name];
  target[name] = replacement(original);
  try {
    await fn();
  } finally {
    target[name] = original;
  }
}

/** The first violation in seeds 1..`last`. */
async function caught(last: number, options: Partial<SimOptions> = {}): Promise<string> {
  for (let seed = 1; seed <= last; seed++) {
    const r = await runSimulation({ ...options, seed });
    if (r.violation !== undefined) return r.violation;
  }
  return `no violation in seeds 1..${last}`;
}

// deno-lint-ignore no-explicit-any
type AnyMethod = (this: Raft<any>, ...args: any[]) => any;
const raftProto = Raft.prototype as unknown as Record<string, AnyMethod>;

function notLeader(): Promise<never> {
  return Promise.reject(new NotLeaderError(undefined));
}

Deno.test("planted: verifyLeader() that trusts its own state without a quorum is caught", async () => {
  await planted(raftProto, "verifyLeader", () =>
    function () {
      return this.state === "leader" ? Promise.resolve() : notLeader();
    }, async () => {
    const v = await caught(120, { adjust: (p) => void (p.mix.verifyLeader = 20) });
    assert.match(v, /^stale leader: .* for verifyLeader/);
  });
});

Deno.test("planted: readIndex() that answers without confirming leadership is caught", async () => {
  await planted(raftProto, "readIndex", (original) =>
    function (options?: { lease?: boolean }) {
      if (options?.lease) return original.call(this, options);
      return this.state === "leader" ? Promise.resolve(this.appliedIndex) : notLeader();
    }, async () => {
    const v = await caught(80);
    assert.match(v, /^(stale leader: .* for read |linearizability)/);
  });
});

Deno.test("planted: a lease that never expires (defect 8) is caught", async () => {
  await planted(LeaseClock.prototype, "holds", () => () => true, async () => {
    const v = await caught(150, { adjust: (p) => void (p.mix.leaseRead = 30) });
    assert.match(v, /^(stale leader: .* for leaseRead|linearizability)/);
  });
});

Deno.test("planted: barrier() that resolves before the entries before it are applied is caught", async () => {
  await planted(raftProto, "barrier", () =>
    function () {
      return this.state === "leader" ? Promise.resolve({ index: this.appliedIndex }) : notLeader();
    }, async () => {
    const v = await caught(120, { adjust: (p) => void (p.mix.barrierRead = 30) });
    assert.match(v, /^linearizability: the history of key/);
  });
});

Deno.test("planted: apply() that acknowledges a write before it commits is caught", async () => {
  await planted(raftProto, "apply", (original) =>
    function (...args: unknown[]) {
      const proposed = original.apply(this, args);
      proposed.catch(() => {});
      if (this.state !== "leader") return proposed;
      return Promise.resolve({
        index: this.lastIndex,
        term: this.currentTerm,
        response: { ok: true },
      });
    }, async () => {
    const v = await caught(40);
    assert.match(v, /^linearizability: the history of key/);
  });
});

Deno.test("planted: apply() that reports outcome not_committed when it does not know is caught", async () => {
  await planted(raftProto, "apply", (original) =>
    function (...args: unknown[]) {
      return original.apply(this, args).catch((e: unknown) => {
        const unknown = (e instanceof LeadershipLostError || e instanceof TimeoutError) &&
          e.outcome === "unknown";
        throw unknown ? new LeadershipLostError("not_committed") : e;
      });
    }, async () => {
    const v = await caught(40);
    assert.match(v, /^linearizability: the history of key/);
  });
});

Deno.test("planted: restore() that resolves before the restore commits is caught", async () => {
  await planted(raftProto, "restore", (original) =>
    function (...args: unknown[]) {
      original.apply(this, args).catch(() => {});
      return Promise.resolve();
    }, async () => {
    const v = await caught(80, { adjust: (p) => void (p.mix.restore = 2) });
    assert.match(v, /^linearizability: the history of key/);
  });
});

Deno.test("planted: a leadership transfer reported done when this node merely stepped down (defect 2) is caught", async () => {
  await planted(
    PendingOperations.prototype,
    "checkTransfers",
    (original) =>
      function (this: PendingOperations, view: LeadershipView) {
        original.call(this, { ...view, otherLeader: view.otherLeader || !view.leading });
      },
    async () => {
      const v = await caught(60, { adjust: (p) => void (p.mix.transfer = 5) });
      assert.match(v, /^leadership transfer: .* no other server has led since/);
    },
  );
});

Deno.test("planted: membership changes acknowledged before they commit are caught", async () => {
  const names = ["addVoter", "addNonvoter", "demoteVoter", "removeServer"];
  const originals = names.map((name) => raftProto[name]);
  names.forEach((name, i) => {
    raftProto[name] = function (...args: unknown[]) {
      originals[i].apply(this, args).catch(() => {});
      return Promise.resolve({ index: this.getConfiguration().index });
    };
  });
  try {
    const v = await caught(60, { adjust: (p) => void (p.mix.membership = 5) });
    assert.match(v, /^membership: /);
  } finally {
    names.forEach((name, i) => raftProto[name] = originals[i]);
  }
});

Deno.test("planted: snapshot() that resolves without storing a snapshot is caught", async () => {
  await planted(raftProto, "snapshot", () =>
    function () {
      const index = this.appliedIndex;
      return Promise.resolve({ id: `${this.currentTerm}-${index}-0`, index, term: 1, size: 0 });
    }, async () => {
    const v = await caught(60, { adjust: (p) => void (p.mix.snapshot = 5) });
    assert.match(v, /^snapshot: n\d's snapshot\(\) resolved with/);
  });
});

Deno.test("planted: apply() that ignores its timeout is caught", async () => {
  await planted(
    raftProto,
    "apply",
    (original) =>
      function (data: Uint8Array, options?: { timeout?: number; signal?: AbortSignal }) {
        return original.call(this, data, { signal: options?.signal });
      },
    async () => {
      const v = await caught(100);
      assert.match(v, /^n\d: apply with a timeout of \d+ ms ended [\d.]+ ms after it/);
    },
  );
});
