/**
 * Raft's safety invariants, checked as the simulation runs (Figure 3 of the
 * Raft paper):
 *
 * - election safety: at most one leader per term;
 * - log matching: one entry per (index, term), always behind the same term;
 * - leader completeness: a leader holds every entry committed before its term;
 * - state machine safety: no two nodes apply different entries at one index,
 *   and what is applied at an index is what was committed there.
 *
 * The checker sees logs only as the simulation shows them (what each node
 * hands its log store, what it applies), so it works on the real node.
 *
 * @module
 */

import type { Entry } from "../../src/core/types.ts";

/**
 * Whether two entries are the same (index, term, type and bytes).
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

/** What the checker needs to know of one node's log. */
export interface LogView {
  /** Server id. */
  readonly id: string;
  /** Term of the entry at `index`, if the node holds it. */
  termAt(index: number): number | undefined;
  /** Highest index before which the log was compacted (entries at or below it are covered by a snapshot). */
  readonly compactedTo: number;
}

interface SeenEntry {
  entry: Entry;
  prevTerm: number | undefined;
}

const TERM_SPACE = 1 << 22;

/**
 * Collects what the nodes do and records the first invariant violation.
 *
 * @example
 * ```ts
 * import { Checker } from "./checker.ts";
 * const c = new Checker();
 * c.leaderElected("n1", 2);
 * c.leaderElected("n2", 2);
 * console.log(c.violation); // election safety: n2 and n1 are both leaders of term 2
 * ```
 */
export class Checker {
  /** The first violation found, if any. */
  violation: string | undefined;
  /** Leader of each term seen. */
  readonly leaders = new Map<number, string>();
  /** When the leader of each term was first seen (virtual ms). */
  readonly #leaderSince = new Map<number, number>();
  /** Indices at which a membership change was acknowledged to a client. */
  readonly #configAcked = new Set<number>();
  readonly #seen = new Map<number, SeenEntry>();
  /** Term of the entry committed at each index, as far as seen. */
  readonly committedTerm: number[] = [];
  /** The term a node was in when it was seen committing each index. */
  readonly #committedIn: number[] = [];
  /** Highest index seen committed. */
  maxCommitted = 0;
  readonly #applied: Array<Entry | undefined> = [];

  /** Record a violation (only the first one is kept). */
  fail(message: string): void {
    if (this.violation === undefined) this.violation = message;
  }

  /** Node `id` is leader of `term` (seen so at virtual time `at`). */
  leaderElected(id: string, term: number, at = 0): void {
    const other = this.leaders.get(term);
    if (other === undefined) {
      this.leaders.set(term, id);
      this.#leaderSince.set(term, at);
    } else if (other !== id) {
      this.fail(`election safety: ${id} and ${other} are both leaders of term ${term}`);
    }
  }

  /** `node` appends `entries` after an entry of term `prevTerm` (undefined: unknown). */
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

  /** `node`, in term `nodeTerm`, has index `index` of term `term` committed. */
  committed(node: string, index: number, term: number, nodeTerm: number): void {
    const known = this.committedTerm[index];
    if (known === undefined) {
      this.committedTerm[index] = term;
      this.#committedIn[index] = nodeTerm;
      if (index > this.maxCommitted) this.maxCommitted = index;
      return;
    }
    if (known !== term) {
      this.fail(
        `state machine safety: ${node} committed index ${index} with term ${term}, another node with term ${known}`,
      );
      return;
    }
    if (nodeTerm < this.#committedIn[index]) this.#committedIn[index] = nodeTerm;
  }

  /**
   * `log` is the log of the leader of `term`, up to `lastIndex` (its first
   * entry of the term is at `lastIndex + 1`): it must hold every entry
   * committed in an earlier term.
   */
  leaderCompleteness(log: LogView, term: number, lastIndex: number): void {
    for (let i = log.compactedTo + 1; i <= this.maxCommitted; i++) {
      const t = this.committedTerm[i];
      if (t === undefined || this.#committedIn[i] >= term) continue;
      const held = i <= lastIndex ? log.termAt(i) : undefined;
      if (held === t) continue;
      this.fail(
        `leader completeness: ${log.id} became leader of term ${term} ${
          held === undefined
            ? `without committed entry ${i}/${t} (last index ${lastIndex})`
            : `with term ${held} at committed index ${i} (committed term ${t})`
        }`,
      );
      return;
    }
  }

  /**
   * `node` confirmed, as leader of `term`, its leadership with a quorum for
   * an operation (`what`) it was asked at virtual time `at`: a read point,
   * a lease read, `verifyLeader()`. The quorum answered a heartbeat of
   * `term` sent after `at`, and every quorum that elected a newer leader
   * holds a server that had left `term` by then: no newer leader may have
   * been seen before `at`. (A lease promises the same without the round
   * trip.) Not for writes: a later leader may commit a deposed leader's entry.
   */
  leadershipConfirmed(node: string, term: number, at: number, what: string): void {
    for (const [t, since] of this.#leaderSince) {
      if (t > term && since < at) {
        this.fail(
          `stale leader: ${node} confirmed its leadership of term ${term} for ${what} asked at ${
            at.toFixed(1)
          } ms, but ${this.leaders.get(t)} was leader of term ${t} since ${since.toFixed(1)} ms`,
        );
        return;
      }
    }
  }

  /**
   * `node`'s leadership transfer, asked while it led `term`, was reported
   * done: another server must have been seen leading a newer term.
   */
  transferred(node: string, term: number): void {
    for (const [t, id] of this.leaders) if (t > term && id !== node) return;
    this.fail(
      `leadership transfer: ${node} (leader of term ${term}) reported its transfer done, but no other server has led since`,
    );
  }

  /**
   * A membership change was acknowledged as committed at `index`: no state
   * machine may ever apply a client entry there.
   */
  configurationCommitted(node: string, index: number): void {
    this.#configAcked.add(index);
    const applied = this.#applied[index];
    if (applied !== undefined) {
      this.fail(
        `membership: ${node} acknowledged a membership change at index ${index}, where ${
          describe(applied)
        } was applied`,
      );
    }
  }

  /** `node` applied `entry` to its state machine. */
  applied(node: string, entry: Entry): void {
    const i = entry.index;
    if (this.#configAcked.has(i)) {
      this.fail(
        `membership: ${node} applied ${
          describe(entry)
        } at index ${i}, where a membership change was acknowledged as committed`,
      );
      return;
    }
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

  /** The entry applied at `index` by whichever node applied it first. */
  appliedAt(index: number): Entry | undefined {
    return this.#applied[index];
  }
}

function describe(e: Entry): string {
  return `entry ${e.index}/${e.term} type ${e.type} (${e.data.byteLength} bytes)`;
}
