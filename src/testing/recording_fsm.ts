/**
 * A state machine for tests that keeps every command it applied, as
 * hashicorp/raft's MockFSM does: assert on what reached each node.
 *
 * @module
 */

import type { FSM, FSMEntry, FSMSnapshot } from "../fsm.ts";
import type { SnapshotSink } from "../storage/types.ts";

/** Bytes of the length prefix of each command in a snapshot. */
const LENGTH_BYTES = 4;

/**
 * Records the data of every applied entry, in order. `apply` returns how
 * many commands it holds; a snapshot holds them all (each with a 4-byte
 * length prefix), and a restore replaces them.
 *
 * @example
 * ```ts
 * import { RecordingFSM } from "./recording_fsm.ts";
 * const fsm = new RecordingFSM();
 * console.log(fsm.apply({ index: 1, term: 1, data: new TextEncoder().encode("x") })); // 1
 * console.log(fsm.texts()); // ["x"]
 * ```
 */
export class RecordingFSM implements FSM<number> {
  /** The data of each applied command, oldest first. */
  commands: Uint8Array[] = [];
  /** The log index of each command applied since the last restore. */
  indexes: number[] = [];

  /**
   * Records `entry`; returns the number of commands held.
   *
   * @example
   * ```ts
   * import { RecordingFSM } from "./recording_fsm.ts";
   * const fsm = new RecordingFSM();
   * fsm.apply({ index: 3, term: 1, data: new Uint8Array([1]) });
   * console.log(fsm.indexes); // [3]
   * ```
   */
  apply(entry: FSMEntry): number {
    this.commands.push(entry.data.slice());
    this.indexes.push(entry.index);
    return this.commands.length;
  }

  /**
   * The commands decoded as UTF-8 text.
   *
   * @example
   * ```ts
   * import { RecordingFSM } from "./recording_fsm.ts";
   * const fsm = new RecordingFSM();
   * fsm.apply({ index: 1, term: 1, data: new TextEncoder().encode("hello") });
   * console.log(fsm.texts()); // ["hello"]
   * ```
   */
  texts(): string[] {
    const decoder = new TextDecoder();
    return this.commands.map((c) => decoder.decode(c));
  }

  /**
   * A point-in-time copy of the commands.
   *
   * @example
   * ```ts
   * import { RecordingFSM } from "./recording_fsm.ts";
   * const a = new RecordingFSM();
   * a.apply({ index: 1, term: 1, data: new Uint8Array([7]) });
   * const chunks: Uint8Array[] = [];
   * await a.snapshot().persist({ write: async (c) => void chunks.push(c) });
   * const b = new RecordingFSM();
   * await b.restore((async function* () { yield* chunks; })());
   * console.log(b.commands); // [Uint8Array(1) [7]]
   * ```
   */
  snapshot(): FSMSnapshot {
    const commands = [...this.commands];
    return {
      async persist(sink: Pick<SnapshotSink, "write">): Promise<void> {
        for (const command of commands) {
          const record = new Uint8Array(LENGTH_BYTES + command.length);
          new DataView(record.buffer).setUint32(0, command.length);
          record.set(command, LENGTH_BYTES);
          await sink.write(record);
        }
      },
      release() {},
    };
  }

  /**
   * Replaces the commands with those of a snapshot.
   *
   * @throws {RangeError} when the data ends inside a command (not a snapshot of this FSM).
   *
   * @example
   * ```ts
   * import { RecordingFSM } from "./recording_fsm.ts";
   * const fsm = new RecordingFSM();
   * await fsm.restore((async function* () {})());
   * console.log(fsm.commands.length); // 0
   * ```
   */
  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of data) {
      parts.push(chunk.slice());
      total += chunk.length;
    }
    const all = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      all.set(part, offset);
      offset += part.length;
    }
    const commands: Uint8Array[] = [];
    const view = new DataView(all.buffer);
    for (let at = 0; at < all.length;) {
      const length = at + LENGTH_BYTES <= all.length ? view.getUint32(at) : -1;
      if (length < 0 || at + LENGTH_BYTES + length > all.length) {
        throw new RangeError(
          `not a RecordingFSM snapshot: expected a command at byte ${at} of ${all.length}`,
        );
      }
      commands.push(all.slice(at + LENGTH_BYTES, at + LENGTH_BYTES + length));
      at += LENGTH_BYTES + length;
    }
    this.commands = commands;
    this.indexes = [];
  }
}
