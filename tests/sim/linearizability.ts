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
 * Operations of unknown outcome are what makes the search explode (each may
 * be placed anywhere after its invocation), so three reductions apply to
 * the operations whose response is at `Infinity` ("open" operations). Each
 * only forbids orders that some allowed order can stand in for, so no
 * linearizable history is called a violation; and since each only forbids,
 * a history the restricted search linearizes is linearizable: no violation
 * is ever missed.
 *
 * - An open operation that leaves the state unchanged is not placed. If an
 *   order places it at a point where it changes nothing, the same order
 *   with it moved to the end is allowed too: nothing in between sees a
 *   difference, nobody waits for its response, and placed last it changes
 *   nothing anyone saw.
 * - The search ends as soon as every operation left is open, and a greedy
 *   run of them (each in invocation order, its first next state) succeeds:
 *   they take effect after everything else.
 * - Open operations with equal inputs (`Model.inputKey`) are interchangeable:
 *   they are placed in invocation order. If an order places the later-invoked
 *   one first, swapping the two gives an order that is allowed too (both are
 *   invoked before the earlier point, neither has a response), with the same
 *   steps of the model.
 *
 * Which operation the search tries first changes no verdict, only how soon
 * it finds a linearization. By default (`order: "hint"`) each point tries
 * the answered operations that may go next in the order of `Model.hint`
 * (for a replicated state machine, the log index each was served at), then
 * the open ones; `order: "invocation"` tries them as invoked. Neither wins
 * everywhere: in invocation order, a put invoked just before a read of the
 * value it overwrote is a wrong turn, and undoing it tries the open
 * operations in every order first; in hint order, an answered operation
 * placed before the open write it depends on is the wrong turn. Callers with
 * a budget try one order, then the other.
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
  /**
   * A string that is equal for inputs that always step alike (optional;
   * lets the search treat open operations with equal inputs as
   * interchangeable). Inputs that differ must give different strings.
   */
  inputKey?(input: I): string;
  /**
   * Where an answered operation most likely sits in a linearization
   * (optional; e.g. the log index a replicated state machine served it at),
   * or undefined when nothing says. Among operations that may be placed
   * next, the search tries those with a hint in hint order first. It only
   * orders the search, so a wrong hint costs time, never a verdict.
   */
  hint?(input: I, output: O | undefined): number | undefined;
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

/**
 * Which operation each point of the search tries first (see
 * {@linkcode checkLinearizable}).
 */
export type SearchOrder = "hint" | "invocation";

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
  /** The operations that could go where this one went, in the order tried. */
  level: Level;
}

interface Level {
  order: Entry[];
  next: number;
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
 * @param options.order which operation each point tries first: `hint` (default) in the
 *   order of `Model.hint`, answered ones before open ones; `invocation` as they were
 *   invoked. It changes no verdict, only how soon one is found.
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
  options: { maxSteps?: number; order?: SearchOrder } = {},
): CheckResult {
  const maxSteps = options.maxSteps ?? 1_000_000;
  const byHint = (options.order ?? "hint") === "hint";
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
  const isOpen = history.map((h) => h.ret === Infinity && h.output === undefined);
  // Open invocations move later, to just before the next response: which
  // operations may be placed next is unchanged (no response is crossed), but
  // the walk tries the answered operations first, so the failures it records
  // have few open operations placed and dominate more (see `failed`).
  let last = head;
  const append = (e: Entry) => {
    last.next = e;
    e.prev = last;
    last = e;
  };
  const deferred: Entry[] = [];
  for (const e of entries) {
    if (e.isCall && isOpen[e.op]) {
      deferred.push(e);
      continue;
    }
    if (!e.isCall) deferred.splice(0).forEach(append);
    append(e);
  }
  deferred.forEach(append);

  // For each open operation, the open operation with an equal input invoked
  // just before it: it may only be placed once that one is.
  const previousTwin = new Int32Array(n).fill(-1);
  if (model.inputKey !== undefined) {
    const lastOfInput = new Map<string, number>();
    for (const e of entries) {
      if (!e.isCall || !isOpen[e.op]) continue;
      const k = model.inputKey(history[e.op].input);
      previousTwin[e.op] = lastOfInput.get(k) ?? -1;
      lastOfInput.set(k, e.op);
    }
  }
  let closedLeft = 0;
  // Answered and open operations are numbered apart, each in history order.
  const openIndex = new Int32Array(n).fill(-1);
  const closedIndex = new Int32Array(n).fill(-1);
  let opens = 0;
  for (let op = 0; op < n; op++) {
    if (isOpen[op]) openIndex[op] = opens++;
    else closedIndex[op] = closedLeft++;
  }

  // Placed operations: all of them, the answered ones, the open ones.
  const linearized = new Uint32Array(Math.ceil(n / 32));
  const closedPlaced = new Uint32Array(Math.ceil(closedLeft / 32));
  const openPlaced = new Uint32Array(Math.ceil(opens / 32));
  const seen = new Set<string>();
  let steps = 0;
  // Comparisons of open sets (see `dominated`), counted apart: one costs a
  // few word operations where a step costs a model step and a memo lookup.
  let compared = 0;
  // Points the search left without success, by answered operations placed
  // and state: the sets of open operations placed there. With the same
  // answered operations placed and the same state, placing more open
  // operations cannot help: whatever order finishes from there finishes
  // from the failed point too, followed by the extra open operations
  // (unknown outcomes, so they can always step; no response waits on them).
  const failed = new Map<string, Uint32Array[]>();
  const setBit = (bits: Uint32Array, i: number) => bits[i >>> 5] |= 1 << (i & 31);
  const clearBit = (bits: Uint32Array, i: number) => bits[i >>> 5] &= ~(1 << (i & 31));
  const place = (op: number) => {
    setBit(linearized, op);
    if (openIndex[op] >= 0) setBit(openPlaced, openIndex[op]);
    else setBit(closedPlaced, closedIndex[op]);
  };
  const unplace = (op: number) => {
    clearBit(linearized, op);
    if (openIndex[op] >= 0) clearBit(openPlaced, openIndex[op]);
    else clearBit(closedPlaced, closedIndex[op]);
  };
  // Keys are short strings that name a set of operations exactly: the
  // answered operations are placed nearly in history order, so their bits
  // are written from the first word with a clear bit to the last word with
  // a set bit (a few words, not n / 32), two 16-bit characters per word.
  // Both bounds are written, so each part has a known length and the key
  // reads back one way only.
  const wordsKey = (bits: Uint32Array, from: number, to: number): string => {
    let key = "";
    for (let w = from; w < to; w++) key += String.fromCharCode(bits[w] & 0xffff, bits[w] >>> 16);
    return key;
  };
  const closedKey = (): string => {
    let from = 0;
    while (from < closedPlaced.length && closedPlaced[from] === ~0 >>> 0) from++;
    let to = closedPlaced.length;
    while (to > from && closedPlaced[to - 1] === 0) to--;
    return `${from}:${to}:${wordsKey(closedPlaced, from, to)}`;
  };
  const placedKey = (): string => `${closedKey()}/${wordsKey(openPlaced, 0, openPlaced.length)}`;
  /** Whether every open operation placed in `a` is placed in `b`. */
  const within = (a: Uint32Array, b: Uint32Array): boolean => {
    for (let w = 0; w < a.length; w++) if ((a[w] & ~b[w]) !== 0) return false;
    return true;
  };
  // Every 64 comparisons count as a search step, so a history whose
  // failures pile up reaches the budget in seconds, not minutes.
  const dominated = (stateKey: string): boolean => {
    const sets = failed.get(`${closedKey()}|${stateKey}`);
    if (sets === undefined) return false;
    for (const f of sets) {
      compared++;
      if (within(f, openPlaced)) return true;
    }
    return false;
  };
  // The sets kept for one key form an antichain: a set that contains the one
  // recorded now is dominated by it and is dropped.
  const recordFailure = (stateKey: string) => {
    const k = `${closedKey()}|${stateKey}`;
    let sets = failed.get(k);
    if (sets === undefined) failed.set(k, sets = []);
    let kept = 0;
    for (const f of sets) {
      compared++;
      if (!within(openPlaced, f)) sets[kept++] = f;
    }
    sets.length = kept;
    sets.push(openPlaced.slice());
  };
  const stack: Array<Frame<S>> = [];
  let state = model.init();
  let longest: number[] = [];

  const isLinearized = (op: number) => (linearized[op >>> 5] & (1 << (op & 31))) !== 0;
  /** Linearize `e` into the first candidate state not seen yet; false when none is left. */
  const tryCandidates = (frame: Frame<S>): boolean => {
    const bit = frame.entry.op;
    const open = isOpen[bit];
    const unchanged = open ? model.key(frame.before) : undefined;
    place(bit);
    while (frame.tried < frame.candidates.length) {
      const next = frame.candidates[frame.tried++];
      const stateKey = model.key(next);
      if (stateKey === unchanged) continue;
      const k = `${placedKey()}|${stateKey}`;
      if (seen.has(k)) continue;
      seen.add(k);
      if (opens > 0 && dominated(stateKey)) continue;
      stack.push(frame);
      state = next;
      lift(frame.entry);
      if (!open) closedLeft--;
      return true;
    }
    unplace(bit);
    return false;
  };

  /** The operations left (all open) in invocation order, if each can step from the last. */
  const placeOpenLast = (): number[] => {
    const order: number[] = [];
    let s = state;
    for (let e = head.next; e !== undefined; e = e.next) {
      if (!e.isCall) continue;
      const h = history[e.op];
      const next = model.step(s, h.input, h.output);
      if (next.length === 0) {
        throw new Error(
          `the model has no next state for operation ${e.op}, whose outcome is unknown: expected at least one (an unknown outcome may always happen)`,
        );
      }
      s = next[0];
      order.push(e.op);
    }
    return order;
  };

  // Each point tries the answered operations that may go next in hint order
  // (unhinted ones first, in invocation order), then the open ones: an open
  // operation is placed only when no answered one leads on. The order only
  // says what is tried first; every operation that may go next is tried.
  const hints = history.map((h, op) =>
    (model.hint === undefined || isOpen[op] ? undefined : model.hint(h.input, h.output)) ??
      -Infinity
  );
  const levelHere = (): Level => {
    const answered: Entry[] = [];
    const open: Entry[] = [];
    for (let e = head.next; e !== undefined && e.isCall; e = e.next) {
      if (previousTwin[e.op] >= 0 && !isLinearized(previousTwin[e.op])) continue;
      if (!byHint) answered.push(e); // as invoked, open ones among them
      else (isOpen[e.op] ? open : answered).push(e);
    }
    if (!byHint) return { order: answered, next: 0 };
    answered.sort((a, b) => hints[a.op] - hints[b.op] || a.time - b.time || a.op - b.op);
    return { order: answered.concat(open), next: 0 };
  };
  let level = levelHere();
  while (head.next !== undefined) {
    if (++steps + compared / 64 > maxSteps) return { result: "unknown", steps, longest };
    if (closedLeft === 0) {
      const rest = placeOpenLast();
      return { result: "ok", steps, longest: [...stack.map((f) => f.entry.op), ...rest] };
    }
    if (level.next < level.order.length) {
      const entry = level.order[level.next++];
      const h = history[entry.op];
      const frame: Frame<S> = {
        entry,
        before: state,
        candidates: model.step(state, h.input, h.output),
        tried: 0,
        level,
      };
      if (tryCandidates(frame)) {
        if (stack.length > longest.length) longest = stack.map((f) => f.entry.op);
        level = levelHere();
      }
      continue;
    }
    // Every operation that may go next was tried and none led on: undo the
    // last choice and try another.
    const frame = stack.pop();
    if (frame === undefined) return { result: "violation", steps, longest };
    if (opens > 0) recordFailure(model.key(state));
    unlift(frame.entry);
    const bit = frame.entry.op;
    if (!isOpen[bit]) closedLeft++;
    unplace(bit);
    state = frame.before;
    level = tryCandidates(frame) ? levelHere() : frame.level;
  }
  return { result: "ok", steps, longest: stack.map((f) => f.entry.op) };
}
