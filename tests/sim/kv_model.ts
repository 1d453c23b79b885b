/**
 * The sequential model of raftd's KV state machine (`src/server/kv_fsm.ts`)
 * for the linearizability checker: one register per key holding a value and
 * the log index of the put that wrote it (its modify index). Compare-and-set
 * compares that index (0: the key must be absent); a delete makes the key
 * absent (index 0); a user snapshot restore replaces every key at once.
 *
 * Histories are checked one key at a time (linearizability is local: a
 * history of single-key operations is linearizable iff each key's is). A
 * restore touches every key; it is projected onto each key, which checks a
 * necessary condition only.
 *
 * Values are unique per put, so a value names the put that wrote it, and the
 * index a put got (from its own response, or from any read that saw its
 * value) names it too. A put whose outcome is unknown may have an index
 * nobody saw; a compare-and-set against it may go either way.
 *
 * @module
 */

import {
  checkLinearizable,
  type CheckResult,
  type Model,
  type Operation,
} from "./linearizability.ts";

/** A client request on one key. */
export type KvInput =
  | { op: "put"; key: string; value: string; cas?: number }
  | { op: "delete"; key: string; cas?: number }
  | { op: "get"; key: string }
  /** A user snapshot restore, projected onto this key: afterwards it holds `value` (absent: undefined) with modify index `index`. */
  | { op: "restore"; key: string; value: string | undefined; index: number };

/** What a request returned. */
export type KvOutput =
  /** A put, delete or restore took effect at log index `index`. */
  | { kind: "written"; index: number }
  /** A compare-and-set failed: the key's modify index was `current` (0: absent). */
  | { kind: "conflict"; current: number }
  /** A read saw `value` (undefined: absent) with modify index `index` (0 when absent). */
  | { kind: "read"; value: string | undefined; index: number };

/** A KV operation of a client history. */
export type KvOperation = Operation<KvInput, KvOutput> & {
  /** Who ran it, for reports (e.g. "c3 via n2"). */
  client?: string;
};

interface Register {
  value: string | undefined;
  /** Modify index; undefined when the put that wrote the value has an index nobody saw. */
  index: number | undefined;
}

const ABSENT: Register = { value: undefined, index: 0 };

/** Whether a compare-and-set against `cas` holds in `s`; undefined when nobody can tell. */
function casHolds(s: Register, cas: number | undefined): boolean | undefined {
  if (cas === undefined) return true;
  if (s.index === undefined) return undefined;
  return s.index === cas;
}

/**
 * The register model of one key. `indexOf` maps a value to the modify index
 * some response showed for it.
 *
 * @example
 * ```ts
 * import { kvModel } from "./kv_model.ts";
 * const m = kvModel(new Map());
 * const [s] = m.step(m.init(), { op: "put", key: "k", value: "v1" }, { kind: "written", index: 4 });
 * console.log(m.step(s, { op: "get", key: "k" }, { kind: "read", value: "v1", index: 4 }).length); // 1
 * console.log(m.step(s, { op: "get", key: "k" }, { kind: "read", value: undefined, index: 0 }).length); // 0
 * ```
 */
export function kvModel(
  indexOf: ReadonlyMap<string, number>,
): Model<Register, KvInput, KvOutput> {
  const write = (
    s: Register,
    cas: number | undefined,
    output: KvOutput | undefined,
    after: (index: number | undefined) => Register,
  ): Register[] => {
    const holds = casHolds(s, cas);
    if (output === undefined) {
      if (holds === true) return [after(undefined)];
      if (holds === false) return [s];
      return [after(undefined), s];
    }
    if (output.kind === "written") return holds === false ? [] : [after(output.index)];
    if (output.kind === "conflict") {
      if (cas === undefined || holds === true) return [];
      return s.index === undefined || s.index === output.current ? [s] : [];
    }
    return [];
  };
  return {
    init: () => ABSENT,
    step(s, input, output) {
      switch (input.op) {
        case "put":
          return write(s, input.cas, output, (index) => ({
            value: input.value,
            index: index ?? indexOf.get(input.value),
          }));
        case "delete":
          return write(s, input.cas, output, () => ABSENT);
        case "restore":
          return [{ value: input.value, index: input.value === undefined ? 0 : input.index }];
        case "get": {
          if (output === undefined) return [s];
          if (output.kind !== "read" || output.value !== s.value) return [];
          if (s.value !== undefined && s.index !== undefined && s.index !== output.index) return [];
          return [s];
        }
      }
    },
    key: (s) => `${s.value ?? "-"}@${s.index ?? "?"}`,
    // The log index it was served at: a write at its index (a put of unknown
    // outcome at the index a read saw it with), a read or a
    // failed compare-and-set just after the index it saw (unless it saw an
    // absent key, whose index 0 says nothing about when).
    hint(input, output) {
      if (output === undefined) return input.op === "put" ? indexOf.get(input.value) : undefined;
      if (output.kind === "written") return output.index;
      const seen = output.kind === "read" ? output.index : output.current;
      return seen > 0 ? seen + 0.5 : undefined;
    },
    inputKey: (i) =>
      JSON.stringify([
        i.op,
        i.key,
        "value" in i ? i.value ?? null : null,
        "cas" in i ? i.cas ?? null : null,
        "index" in i ? i.index : null,
      ]),
  };
}

/**
 * Drop the puts of unknown outcome that nothing observed: no read returned
 * their value, and no compare-and-set names an index that no response
 * showed (which could be theirs). Such a put can always be taken to happen
 * last (or never) without changing what anyone saw, and many of them (a
 * leader dying with a full pipeline) make the search explode.
 *
 * An operation that names an index no response showed (a conflict saw the
 * modify index of a put nobody read) may have seen any of the unread puts
 * invoked before it answered; of those, `suspects` (the latest invoked) are
 * kept. Dropping any put of unknown outcome never hides a violation (if the
 * rest is linearizable, the dropped puts go last), so a small `suspects` is
 * safe; it may only make a linearizable history look violated, so the
 * caller checks again with every suspect kept before reporting one.
 */
export function pruneUnseen(ops: KvOperation[], suspects = Infinity): KvOperation[] {
  const known = new Set<number>([0]);
  const readValues = new Set<string>();
  for (const op of ops) {
    const o = op.output;
    // A delete's index names no state: the key it leaves has index 0.
    if (o?.kind === "written" && op.input.op === "put") known.add(o.index);
    if (o?.kind === "read") {
      known.add(o.index);
      if (o.value !== undefined) readValues.add(o.value);
    }
    if (op.input.op === "restore") known.add(op.input.index);
  }
  const unseen = ops.filter((op) =>
    op.input.op === "put" && op.output === undefined && !readValues.has(op.input.value)
  ).sort((a, b) => a.call - b.call);
  const kept = new Set<KvOperation>();
  for (const op of ops) {
    const i = op.input;
    const namesUnknown =
      ((i.op === "put" || i.op === "delete") && i.cas !== undefined && !known.has(i.cas)) ||
      (op.output?.kind === "conflict" && !known.has(op.output.current));
    if (!namesUnknown) continue;
    const before = unseen.filter((put) => put.call < op.ret);
    for (const put of before.slice(Math.max(0, before.length - suspects))) kept.add(put);
  }
  const dropped = new Set(unseen.filter((put) => !kept.has(put)));
  return ops.filter((op) => !dropped.has(op));
}

/**
 * Bound the response time of each put of unknown outcome whose value a read
 * saw: it took effect before the first read that saw it answered. The value
 * must be written by that put alone (values are unique per put in the
 * simulation; a value written twice is left alone), so in every
 * linearization the put comes before each read of its value, and the bound
 * forbids no linearization. A put whose value was read before it was even
 * invoked is left open: the search finds that violation itself.
 *
 * Unbounded, such puts stay open to the end of the history; with dozens of
 * them (a leader dying with a full pipeline) the search explodes.
 *
 * @example
 * ```ts
 * import { closeObserved } from "./kv_model.ts";
 * const [put] = closeObserved([
 *   { call: 0, ret: Infinity, input: { op: "put", key: "k", value: "a" } },
 *   { call: 5, ret: 7, input: { op: "get", key: "k" }, output: { kind: "read", value: "a", index: 3 } },
 * ]);
 * console.log(put.ret); // 7
 * ```
 */
export function closeObserved(ops: KvOperation[]): KvOperation[] {
  const writers = new Map<string, number>();
  for (const op of ops) {
    const i = op.input;
    const value = i.op === "put" || i.op === "restore" ? i.value : undefined;
    if (value !== undefined) writers.set(value, (writers.get(value) ?? 0) + 1);
  }
  const firstSeen = new Map<string, number>();
  for (const op of ops) {
    const o = op.output;
    if (o?.kind !== "read" || o.value === undefined || op.ret === Infinity) continue;
    firstSeen.set(o.value, Math.min(firstSeen.get(o.value) ?? Infinity, op.ret));
  }
  return ops.map((op) => {
    if (op.input.op !== "put" || op.output !== undefined || op.ret !== Infinity) return op;
    if (writers.get(op.input.value) !== 1) return op;
    const seen = firstSeen.get(op.input.value);
    if (seen === undefined || seen < op.call) return op;
    return { ...op, ret: seen };
  });
}

/** The verdict for a whole KV history. */
export interface KvCheckResult {
  /** `ok` when every key's history is linearizable; `unknown` when a search ran out of budget. */
  result: CheckResult["result"];
  /** Operations checked. */
  operations: number;
  /** For a violation (or an exhausted search): the key, and a readable account of its history. */
  key?: string;
  /** Readable lines: the key's operations in invocation order, then the longest linearizable prefix. */
  report?: string[];
}

function describe(op: KvOperation): string {
  const i = op.input;
  const what = i.op === "put"
    ? `put ${i.value}${i.cas !== undefined ? ` cas=${i.cas}` : ""}`
    : i.op === "delete"
    ? `delete${i.cas !== undefined ? ` cas=${i.cas}` : ""}`
    : i.op === "restore"
    ? `restore ${i.value ?? "(absent)"}@${i.index}`
    : "get";
  const o = op.output;
  const got = o === undefined
    ? "unknown"
    : o.kind === "written"
    ? `written@${o.index}`
    : o.kind === "conflict"
    ? `conflict current=${o.current}`
    : `${o.value ?? "(absent)"}@${o.index}`;
  const ret = op.ret === Infinity ? "?" : String(Math.round(op.ret * 10) / 10);
  return `[${Math.round(op.call * 10) / 10}, ${ret}] ${op.client ?? ""} ${what} -> ${got}`;
}

/** Unseen puts kept per unexplained index on the first try (see {@linkcode pruneUnseen}). */
const SUSPECTS = 2;

/** Check one key's operations: pruned (`suspects`; undefined: not at all) and closed. */
function checkKey(
  all: KvOperation[],
  suspects: number | undefined,
  options: { maxSteps?: number },
): CheckResult & { shown: KvOperation[] } {
  // `shown`: the operations as recorded (for reports); `ops`: as checked.
  const shown = suspects === undefined ? all : pruneUnseen(all, suspects);
  const ops = suspects === undefined ? shown : closeObserved(shown);
  const indexOf = new Map<string, number>();
  for (const op of ops) {
    const o = op.output;
    if (op.input.op === "put" && o?.kind === "written") indexOf.set(op.input.value, o.index);
    if (o?.kind === "read" && o.value !== undefined) indexOf.set(o.value, o.index);
    if (op.input.op === "restore" && op.input.value !== undefined) {
      indexOf.set(op.input.value, op.input.index);
    }
  }
  // Neither search order wins everywhere (see linearizability.ts); the
  // second runs only when the first runs out of budget.
  const model = kvModel(indexOf);
  let verdict = checkLinearizable(model, ops, { ...options, order: "invocation" });
  if (verdict.result === "unknown") {
    verdict = checkLinearizable(model, ops, { ...options, order: "hint" });
  }
  return { ...verdict, shown };
}

/**
 * Check a history of KV operations, key by key.
 *
 * @example A stale read after an acknowledged write
 * ```ts
 * import { checkKvHistory } from "./kv_model.ts";
 * const r = checkKvHistory([
 *   { call: 0, ret: 10, input: { op: "put", key: "k", value: "a" }, output: { kind: "written", index: 3 } },
 *   { call: 11, ret: 12, input: { op: "get", key: "k" }, output: { kind: "read", value: undefined, index: 0 } },
 * ]);
 * console.log(r.result, r.key); // violation k
 * ```
 */
export function checkKvHistory(
  history: ReadonlyArray<KvOperation>,
  options: { maxSteps?: number; prune?: boolean } = {},
): KvCheckResult {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    let ops = byKey.get(op.input.key);
    if (ops === undefined) byKey.set(op.input.key, ops = []);
    ops.push(op);
  }
  let unknown: KvCheckResult | undefined;
  for (const key of [...byKey.keys()].sort()) {
    const all = byKey.get(key)!;
    const asRecorded = options.prune === false;
    let verdict = checkKey(all, asRecorded ? undefined : SUSPECTS, options);
    if (verdict.result !== "ok" && !asRecorded) {
      // A violation with few suspects kept may come from the pruning itself.
      if (pruneUnseen(all).length !== verdict.shown.length) {
        verdict = checkKey(all, Infinity, options);
      }
      // A search out of budget may finish on the history as recorded (not
      // pruned, not closed): the same verdict, a differently shaped search.
      if (verdict.result === "unknown") {
        const recorded = checkKey(all, undefined, options);
        if (recorded.result !== "unknown") verdict = recorded;
      }
    }
    const { shown } = verdict;
    if (verdict.result === "ok") continue;
    const sorted = shown.map((op, i) => ({ op, i })).sort((a, b) =>
      a.op.call - b.op.call || a.i - b.i
    );
    const linearized = new Set(verdict.longest);
    const stuck = sorted.filter(({ i }) => !linearized.has(i));
    const report = [
      `history of key ${key} (${shown.length} operations, [invoked, answered]):`,
      ...sorted.map(({ op }) => `  ${describe(op)}`),
      `longest linearizable prefix (${verdict.longest.length} operations), its end:`,
      ...verdict.longest.slice(-8).map((i) => `  ${describe(shown[i])}`),
      `operations it could not place next (first ${Math.min(8, stuck.length)} by invocation):`,
      ...stuck.slice(0, 8).map(({ op }) => `  ${describe(op)}`),
    ];
    const result: KvCheckResult = {
      result: verdict.result,
      operations: history.length,
      key,
      report,
    };
    if (verdict.result === "violation") return result;
    unknown ??= result;
  }
  return unknown ?? { result: "ok", operations: history.length };
}
