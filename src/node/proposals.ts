/**
 * Operations that go through the log or the leader's state: each checks that
 * the node runs, hands the proposal to the core, registers what waits for
 * its result with the pending operations, and wakes the Ready loop. Writes
 * (`apply`, `barrier`), the bootstrap configuration, an operator's restore
 * and leadership transfers. Membership changes and reads have their own
 * files.
 *
 * @module
 */

import { checkConfiguration } from "../core/membership.ts";
import { type Configuration, EntryType } from "../core/types.ts";
import { AbortError, InvalidStateError } from "../errors.ts";
import { asAbortError } from "./abort.ts";
import { checkId } from "./arguments.ts";
import type { NodeContext } from "./context.ts";
import { checkRunning } from "./lifecycle.ts";
import { operationDeadline, type PendingOperations } from "./pending.ts";
import type { ReadyLoop } from "./ready_loop.ts";
import { encodeRestoreEntries, readPieces, RESTORE_HEADER_BYTES } from "./restore_chunks.ts";
import type { ApplyResult, OperationOptions } from "./types.ts";

/** Most bytes of state in one entry of a restore. */
const RESTORE_PIECE_BYTES = 64 * 1024;

/** What proposals hand their work to. */
export interface ProposalParts {
  /** Operations waiting on the node. */
  pending: PendingOperations;
  /** The Ready loop, woken after each proposal. */
  loop: Pick<
    ReadyLoop<unknown>,
    "schedule" | "scheduleSoon" | "noteConfiguration" | "lastReadySeq"
  >;
}

/**
 * Proposals to the core, and the flag that holds them back while an
 * operator's restore is written.
 *
 * @example
 * ```ts
 * import type { Proposals } from "./proposals.ts";
 * import { EntryType } from "../core/types.ts";
 * async function write(proposals: Proposals, text: string) {
 *   const data = new TextEncoder().encode(text);
 *   const { index } = await proposals.propose(data, EntryType.Normal, "apply", { timeout: 1000 });
 *   return index;
 * }
 * ```
 */
export class Proposals {
  #node: NodeContext;
  #parts: ProposalParts;
  #restoring = false;

  /** Proposals of `node`. */
  constructor(node: NodeContext, parts: ProposalParts) {
    this.#node = node;
    this.#parts = parts;
  }

  /** Whether an operator's restore is being read or committed: other proposals wait. */
  get restoring(): boolean {
    return this.#restoring;
  }

  /** Throw unless the node runs and no restore is in progress. */
  checkCanPropose(): void {
    checkRunning(this.#node);
    if (this.#restoring) {
      throw new InvalidStateError("a restore is in progress; retry after it completes");
    }
  }

  /** Write the first configuration of a new cluster; resolves once it is on disk. */
  async bootstrap(configuration: Configuration): Promise<void> {
    checkRunning(this.#node);
    this.bootstrapCore(configuration);
    await this.persisted();
  }

  /**
   * Put the first configuration of a new cluster into the core (not yet on
   * disk). `startNode` calls this before the transport delivers anything, so
   * no peer's term reaches the node first.
   */
  bootstrapCore(configuration: Configuration): void {
    this.#node.core.bootstrap(checkConfiguration(configuration));
    this.#parts.loop.noteConfiguration();
  }

  /** Resolves once everything the core has produced so far is on disk. */
  async persisted(): Promise<void> {
    // Everything produced so far goes into the next Ready at the latest.
    const promise = this.#parts.pending.addPersistWaiter(this.#parts.loop.lastReadySeq + 1);
    this.#parts.loop.schedule();
    await promise;
  }

  /** Propose one entry of `type`; resolves once it is applied here. Never throws (rejects). */
  propose(
    data: Uint8Array,
    type: EntryType,
    op: string,
    options: OperationOptions | undefined,
  ): Promise<ApplyResult<unknown>> {
    try {
      this.checkCanPropose();
      const { core, clock } = this.#node;
      const deadline = operationDeadline(clock, options, op);
      options?.signal?.throwIfAborted();
      // Nothing uncommitted: no batch to wait for, so send this one at once.
      const idle = core.commitIndex === core.lastIndex;
      const { index, term } = core.propose([data], type);
      const kind = type === EntryType.Normal ? "apply" : "index";
      const promise = this.#parts.pending.addApply(
        index,
        term,
        kind,
        deadline,
        options?.signal,
        op,
      );
      if (idle) this.#parts.loop.scheduleSoon();
      else this.#parts.loop.schedule();
      return promise;
    } catch (e) {
      return Promise.reject(asAbortError(e, op));
    }
  }

  /**
   * Replace the cluster's state with `data` (an FSM snapshot stream),
   * written through the log as a run of restore entries; resolves once the
   * last one is applied here.
   */
  async restore(data: AsyncIterable<Uint8Array>, options?: OperationOptions): Promise<void> {
    checkRunning(this.#node);
    if (this.#restoring) throw new InvalidStateError("a restore is already in progress");
    this.#restoring = true;
    try {
      const { core, clock } = this.#node;
      const deadline = operationDeadline(clock, options, "restore");
      if (core.state !== "leader") throw this.#node.notLeader();
      // Each entry fits in one append.
      const size = Math.max(
        1,
        Math.min(RESTORE_PIECE_BYTES, this.#node.config().maxAppendBytes - RESTORE_HEADER_BYTES),
      );
      const pieces = await readPieces(data, size);
      options?.signal?.throwIfAborted();
      const first = core.lastIndex + 1;
      const { index, term } = core.propose(encodeRestoreEntries(first, pieces), EntryType.Restore);
      const last = index + pieces.length - 1;
      const { pending, loop } = this.#parts;
      const promise = pending.addApply(last, term, "index", deadline, options?.signal, "restore");
      loop.schedule();
      await promise;
    } catch (e) {
      throw asAbortError(e, "restore");
    } finally {
      this.#restoring = false;
    }
  }

  /** Hand leadership to `id` (or the best voter); resolves once another node leads. */
  transferLeadership(id: string | undefined, options?: OperationOptions): Promise<void> {
    try {
      checkRunning(this.#node);
      if (id !== undefined) checkId(id, "leadershipTransfer: id");
      const deadline = operationDeadline(this.#node.clock, options, "leadershipTransfer");
      const signal = options?.signal;
      if (signal?.aborted) {
        throw new AbortError("leadershipTransfer", "not_committed", { cause: signal.reason });
      }
      this.#node.core.transferLeadership(id);
      const promise = this.#parts.pending.addTransfer(deadline, signal);
      this.#parts.loop.schedule();
      return promise;
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
