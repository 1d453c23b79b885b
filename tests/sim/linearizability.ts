/**
 * A linearizability checker for histories of concurrent operations: the
 * Wing & Gong search with Lowe's memoization, as Porcupine and Knossos do.
 *
 * A history is a set of operations, each with the time it was invoked, the
 * time its response arrived, its input and its output. It is linearizable
 * when every operation can be given a point between its invocation and its
 * response such that running them in that order on the sequential model
 * produces the outputs seen. An operation whose outcome is unknown (a
 * timeout, a lost connection, an error saying `outcome: unknown`) has its
 * response at `Infinity` and no output: it may take effect at any time after
 * its invocation, or never (placed after everything else it changes nothing
 * anyone saw).
 *
 * Models may be nondeterministic: `step` returns every state the operation
 * may lead to.
 *
 * @module
 */

/**
 * A sequential specification.
 *
 * @example A counter that returns its new value
 * ```ts
 * import type { Model } from "./linearizability.ts";
 * const counter: Model<number, "inc", number> = {
 *   init: () => 0,
 *   step: (s, _input, output) => (output === undefined || output === s + 1 ? [s + 1] : []),
 *   key: (s) => String(s),
 * };
 * ```
 */
export interface Model<S, I, O> {
  /** The initial state. */
  init(): S;
  /**
   * The states `input` may lead to from `state` when it returned `output`
   * (`undefined`: the output is unknown); empty when that output is
   * impossible there.
   */
  step(state: S, input: I, output: O | undefined): S[];
  /** A string that is equal for equal states (for memoization). */
  key(state: S): string;
}

/** One operation of a history. */
export interface Operation<I, O> {
  /** When it was invoked. */
  call: number;
  /** When its response arrived; `Infinity` when its outcome is unknown. */
  ret: number;
  /** What was asked. */
  input: I;
  /** What was answered; `undefined` when unknown. */
  output?: O;
}

/** The verdict of {@linkcode checkLinearizable}. */
export interface CheckResult {
  /** `ok`: linearizable; `violation`: not; `unknown`: the search budget ran out. */
  result: "ok" | "violation" | "unknown";
  /** Search steps taken. */
  steps: number;
  /**
   * For a violation: the longest sequence of operations (indices into the
   * history) that could be linearized, in linearization order.
   */
  longest: number[];
}

interface Entry {
  time: number;
  op: number;
  isCall: boolean;
  match: Entry | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

interface Frame<S> {
  entry: Entry;
  before: S;
  candidates: S[];
  tried: number;
}

function lift(entry: Entry): void {
  entry.prev!.next = entry.next;
  entry.next!.prev = entry.prev;
  const match = entry.match!;
  match.prev!.next = match.next;
  if (match.next) match.next.prev = match.prev;
}

function unlift(entry: Entry): void {
  const match = entry.match!;
  match.prev!.next = match;
  if (match.next) match.next.prev = match;
  entry.prev!.next = entry;
  entry.next!.prev = entry;
}

/**
 * Check whether `history` is linearizable with respect to `model`.
 *
 * @param options.maxSteps give up (result `unknown`) after this many search steps. Default 1e6.
 *
 * @example A register read that saw a write before it was made
 * ```ts
 * import { checkLinearizable, type Model } from "./linearizability.ts";
 * type In = { write?: number };
 * const register: Model<number, In, number> = {
 *   init: () => 0,
 *   step: (s, i, o) =>
 *     i.write !== undefined ? [i.write] : o === undefined || o === s ? [s] : [],
 *   key: String,
 * };
 * const history = [
 *   { call: 0, ret: 1, input: {}, output: 5 },
 *   { call: 2, ret: 3, input: { write: 5 } },
 * ];
 * console.log(checkLinearizable(register, history).result); // violation
 * ```
 */
export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: ReadonlyArray<Operation<I, O>>,
  options: { maxSteps?: number } = {},
): CheckResult {
  const maxSteps = options.maxSteps ?? 1_000_000;
  const n = history.length;
  if (n === 0) return { result: "ok", steps: 0, longest: [] };

  // Entries by time; at equal times calls first (they overlap: the lenient
  // reading of a tie), then by operation order for determinism.
  const entries: Entry[] = [];
  for (let op = 0; op < n; op++) {
    const h = history[op];
    if (!(h.ret >= h.call)) {
      throw new RangeError(`operation ${op} returns (${h.ret}) before it is called (${h.call})`);
    }
    const call: Entry = {
      time: h.call,
      op,
      isCall: true,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    const ret: Entry = {
      time: h.ret,
      op,
      isCall: false,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    call.match = ret;
    entries.push(call, ret);
  }
  entries.sort((a, b) =>
    a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1)
  );
  const head: Entry = {
    time: -Infinity,
    op: -1,
    isCall: false,
    match: undefined,
    prev: undefined,
    next: undefined,
  };
  let last = head;
  for (const e of entries) {
    last.next = e;
    e.prev = last;
    last = e;
  }

  const words = Math.ceil(n / 32);
  const linearized = new Uint32Array(words);
  const seen = new Set<string>();
  const stack: Array<Frame<S>> = [];
  let state = model.init();
  let entry: Entry | undefined = head.next;
  let steps = 0;
  let longest: number[] = [];

  const cacheKey = (s: S) => `${linearized.join(",")}|${model.key(s)}`;
  /** Linearize `e` into the first candidate state not seen yet; false when none is left. */
  const tryCandidates = (frame: Frame<S>): boolean => {
    const bit = frame.entry.op;
    linearized[bit >>> 5] |= 1 << (bit & 31);
    while (frame.tried < frame.candidates.length) {
      const next = frame.candidates[frame.tried++];
      const k = cacheKey(next);
      if (seen.has(k)) continue;
      seen.add(k);
      stack.push(frame);
      state = next;
      lift(frame.entry);
      return true;
    }
    linearized[bit >>> 5] &= ~(1 << (bit & 31));
    return false;
  };

  while (head.next !== undefined) {
    if (++steps > maxSteps) return { result: "unknown", steps, longest };
    if (entry === undefined) throw new Error("linearizability search walked off the history");
    if (entry.isCall) {
      const h = history[entry.op];
      const frame: Frame<S> = {
        entry,
        before: state,
        candidates: model.step(state, h.input, h.output),
        tried: 0,
      };
      if (tryCandidates(frame)) {
        if (stack.length > longest.length) longest = stack.map((f) => f.entry.op);
        entry = head.next;
      } else {
        entry = entry.next;
      }
      continue;
    }
    // A response: some operation open at this point must be linearized
    // before it, and none could. Undo the last choice and try another.
    for (;;) {
      const frame = stack.pop();
      if (frame === undefined) return { result: "violation", steps, longest };
      unlift(frame.entry);
      const bit = frame.entry.op;
      linearized[bit >>> 5] &= ~(1 << (bit & 31));
      state = frame.before;
      if (tryCandidates(frame)) {
        entry = head.next;
        break;
      }
      entry = frame.entry.next;
      break;
    }
  }
  return { result: "ok", steps, longest: stack.map((f) => f.entry.op) };
}
