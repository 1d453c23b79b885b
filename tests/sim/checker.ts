/**
 * The safety invariants of Raft, checked incrementally as the simulation runs:
 * election safety, log matching, leader completeness and state machine safety.
 * The first violation is kept; the simulation stops at it.
 *
 * @module
 */

import type { RaftCore } from "../../src/core/raft_core.ts";
import type { Entry } from "../../src/core/types.ts";

/**
 * Whether two entries are the same entry (same position, term, type and payload).
 *
 * @example
 * ```ts
 * import { sameEntry } from "./checker.ts";
 * const e = { index: 1, term: 1, type: 0 as const, data: new Uint8Array([1]) };
 * console.log(sameEntry(e, { ...e, data: new Uint8Array([1]) })); // true
 * ```
 */
export function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  if (a.index !== b.index || a.term !== b.term || a.type !== b.type) return false;
  const x = a.data;
  const y = b.data;
  if (x.byteLength !== y.byteLength) return false;
  for (let i = 0; i < x.byteLength; i++) if (x[i] !== y[i]) return false;
  return true;
}

interface SeenEntry {
  entry: Entry;
  /** Term of the entry before it, when known. */
  prevTerm: number | undefined;
}

const TERM_SPACE = 1 << 22;

/**
 * Global knowledge about every node's log, and the checks against it.
 *
 * @example
 * ```ts
 * import { Checker } from "./checker.ts";
 * const c = new Checker();
 * c.leaderElected("n1", 2);
 * c.leaderElected("n2", 2);
 * console.log(c.violation); // "election safety: n2 and n1 are both leaders of term 2"
 * ```
 */
export class Checker {
  /** The first violation found, if any. */
  violation: string | undefined;
  /** Leader of each term. */
  readonly leaders = new Map<number, string>();
  /** Every (index, term) ever appended anywhere: which entry and what precedes it. */
  readonly #seen = new Map<number, SeenEntry>();
  /** The committed entry (or just its term, when only that is known) at each index. */
  readonly committedTerm: number[] = [];
  readonly #committedEntry: Array<Entry | undefined> = [];
  /** Term in which each index was first seen committed (the commit's term or later). */
  readonly #committedIn: number[] = [];
  /** Highest index known committed anywhere. */
  maxCommitted = 0;
  /** The entry applied at each index by the first node that applied it. */
  readonly #applied: Array<Entry | undefined> = [];

  /** Record a violation (the first one wins). */
  fail(message: string): void {
    if (this.violation === undefined) this.violation = message;
  }

  /** Election safety: at most one leader per term. */
  leaderElected(id: string, term: number): void {
    const other = this.leaders.get(term);
    if (other === undefined) this.leaders.set(term, id);
    else if (other !== id) {
      this.fail(`election safety: ${id} and ${other} are both leaders of term ${term}`);
    }
  }

  /**
   * Log matching: an (index, term) pair names one entry everywhere, always
   * preceded by the same term. By induction, logs that agree on an entry agree
   * on everything before it.
   */
  entriesAppended(node: string, prevTerm: number | undefined, entries: readonly Entry[]): void {
    let p = prevTerm;
    for (const e of entries) {
      if (e.term >= TERM_SPACE) {
        this.fail(`checker: term ${e.term} is beyond the checker's key space`);
        return;
      }
      const key = e.index * TERM_SPACE + e.term;
      const seen = this.#seen.get(key);
      if (seen === undefined) {
        this.#seen.set(key, { entry: e, prevTerm: p });
      } else {
        if (!sameEntry(seen.entry, e)) {
          this.fail(
            `log matching: ${node} holds a different entry at index ${e.index} term ${e.term} than another log`,
          );
          return;
        }
        if (p !== undefined) {
          if (seen.prevTerm === undefined) seen.prevTerm = p;
          else if (seen.prevTerm !== p) {
            this.fail(
              `log matching: on ${node} entry ${e.index}/${e.term} follows term ${p}, elsewhere term ${seen.prevTerm}`,
            );
            return;
          }
        }
      }
      p = e.term;
    }
  }

  /**
   * A node whose current term is `nodeTerm` has a commit index covering
   * `index`: its entry there (term `term`, `entry` if still held) must be the
   * one committed everywhere. The first node to see it committed learnt so in
   * `nodeTerm` (the term the commit was decided in, or a later one): every
   * leader of a higher term must hold the entry.
   */
  committed(
    node: string,
    index: number,
    term: number,
    entry: Entry | undefined,
    nodeTerm: number,
    cores: Iterable<RaftCore>,
  ): void {
    const known = this.committedTerm[index];
    if (known === undefined) {
      this.committedTerm[index] = term;
      this.#committedIn[index] = nodeTerm;
      this.#committedEntry[index] = entry;
      if (index > this.maxCommitted) this.maxCommitted = index;
      for (const core of cores) {
        if (core.state === "leader" && core.term > nodeTerm) {
          this.#leaderHas(core, index, term, "is");
        }
      }
      return;
    }
    if (known !== term) {
      this.fail(
        `state machine safety: ${node} committed index ${index} with term ${term}, another node with term ${known}`,
      );
      return;
    }
    const other = this.#committedEntry[index];
    if (entry !== undefined) {
      if (other === undefined) this.#committedEntry[index] = entry;
      else if (!sameEntry(other, entry)) {
        this.fail(`state machine safety: ${node} committed a different entry at index ${index}`);
      }
    }
  }

  /** Leader completeness: a new leader holds every entry committed in an earlier term. */
  leaderCompleteness(core: RaftCore): void {
    for (let i = 1; i <= this.maxCommitted; i++) {
      const t = this.committedTerm[i];
      if (t === undefined || this.#committedIn[i] >= core.term) continue;
      this.#leaderHas(core, i, t, "became");
      if (this.violation) return;
    }
  }

  #leaderHas(core: RaftCore, index: number, term: number, how: string): void {
    const t = core.termAt(index);
    if (t === undefined) {
      // Compacted away (a snapshot covers it) is fine; missing at the end is not.
      if (index > core.lastIndex) {
        this.fail(
          `leader completeness: ${core.id} ${how} leader of term ${core.term} without committed entry ${index}/${term} (last index ${core.lastIndex})`,
        );
      }
      return;
    }
    if (t !== term) {
      this.fail(
        `leader completeness: ${core.id} ${how} leader of term ${core.term} with term ${t} at committed index ${index} (committed term ${term})`,
      );
    }
  }

  /** State machine safety: no two nodes apply different entries at one index. */
  applied(node: string, entry: Entry): void {
    const i = entry.index;
    const first = this.#applied[i];
    if (first === undefined) this.#applied[i] = entry;
    else if (!sameEntry(first, entry)) {
      this.fail(
        `state machine safety: ${node} applied ${
          describe(entry)
        } at index ${i}, another node applied ${describe(first)}`,
      );
      return;
    }
    const t = this.committedTerm[i];
    if (t !== undefined && t !== entry.term) {
      this.fail(
        `state machine safety: ${node} applied term ${entry.term} at index ${i}, committed term is ${t}`,
      );
    }
  }

  /** The entry that was applied at `index`, if any node applied it. */
  appliedAt(index: number): Entry | undefined {
    return this.#applied[index];
  }

  /**
   * Full log matching between two in-memory logs: from the highest index
   * where their terms agree down, every held entry must be identical.
   */
  compareLogs(a: RaftCore, b: RaftCore): void {
    const lo = Math.max(a.firstIndex, b.firstIndex);
    const hi = Math.min(a.lastIndex, b.lastIndex);
    let matched = false;
    for (let i = hi; i >= lo; i--) {
      const ea = a.entryAt(i);
      const eb = b.entryAt(i);
      if (ea === undefined || eb === undefined) continue;
      if (!matched) {
        matched = ea.term === eb.term;
        if (!matched) continue;
      }
      if (!sameEntry(ea, eb)) {
        this.fail(
          `log matching: ${a.id} and ${b.id} agree at a later index but differ at index ${i} (${
            describe(ea)
          } vs ${describe(eb)})`,
        );
        return;
      }
    }
  }
}

function describe(e: Entry): string {
  return `entry ${e.index}/${e.term} type ${e.type} (${e.data.byteLength} bytes)`;
}
