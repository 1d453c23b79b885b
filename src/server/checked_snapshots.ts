/**
 * A transport whose incoming snapshots are checked as they stream in.
 *
 * @module
 */

import type { InstallSnapshotRequest, Message, ServerAddress } from "../core/types.ts";
import type { Transport, TransportHandler } from "../transport/types.ts";

/**
 * Wraps `transport` so that the data of every incoming snapshot passes
 * through `check` before Raft stores it: a stream `check` rejects fails the
 * transfer (the sender is told why) and never reaches the state machine. A
 * peer sending bytes the state machine cannot restore would otherwise stop
 * the node that installs them.
 *
 * @example
 * ```ts
 * import { withCheckedSnapshots } from "./checked_snapshots.ts";
 * import { checkedKvSnapshot } from "./kv_snapshot.ts";
 * import { MemoryNetwork } from "../transport/memory_transport.ts";
 * const transport = withCheckedSnapshots(new MemoryNetwork().transport("a"), checkedKvSnapshot);
 * console.log(transport.localAddress); // "a"
 * ```
 */
export function withCheckedSnapshots(
  transport: Transport,
  check: (data: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>,
): Transport {
  return {
    get localAddress(): ServerAddress {
      return transport.localAddress;
    },
    start(handler: TransportHandler): Promise<void> {
      return transport.start({
        onMessage: (message, from) => handler.onMessage(message, from),
        onSnapshot: (message, data, from) => handler.onSnapshot(message, check(data), from),
      });
    },
    send(address: ServerAddress, message: Message): void {
      transport.send(address, message);
    },
    sendSnapshot(
      address: ServerAddress,
      message: InstallSnapshotRequest,
      data: AsyncIterable<Uint8Array>,
    ): Promise<void> {
      return transport.sendSnapshot(address, message, data);
    },
    close(): Promise<void> {
      return transport.close();
    },
  };
}
