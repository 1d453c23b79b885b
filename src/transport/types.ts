/**
 * The transport interface: how Raft messages move between servers.
 *
 * Messages are fire-and-forget and ordered per peer; the protocol tolerates
 * loss, so a transport drops what it cannot deliver. Snapshots are streamed
 * beside their InstallSnapshot message.
 *
 * @module
 */

import type { InstallSnapshotRequest, Message, ServerAddress } from "../core/types.ts";

/**
 * Receives what the transport delivers. Implemented by the Raft node.
 *
 * @example
 * ```ts
 * import type { TransportHandler } from "./types.ts";
 * const handler: TransportHandler = {
 *   onMessage: (m) => console.log(m.type, "from", m.from),
 *   onSnapshot: async (_m, data) => { for await (const chunk of data) void chunk; },
 * };
 * ```
 */
export interface TransportHandler {
  /**
   * A message arrived from the server advertising address `from` (so a new
   * server can answer a leader or candidate it has no configuration for yet).
   * Must not throw.
   */
  onMessage(message: Message, from: ServerAddress): void;
  /**
   * An InstallSnapshot arrived with its data. Resolves once the data is
   * stored; rejecting tells the sender it failed.
   */
  onSnapshot(
    message: InstallSnapshotRequest,
    data: AsyncIterable<Uint8Array>,
    from: ServerAddress,
  ): Promise<void>;
}

/**
 * Moves messages between servers.
 *
 * @example Sending a heartbeat
 * ```ts
 * import type { Transport } from "./types.ts";
 * function ping(t: Transport) {
 *   t.send("127.0.0.1:7002", {
 *     type: "heartbeat", term: 1, from: "n1", to: "n2", commit: 0, context: 0,
 *   });
 * }
 * ```
 */
export interface Transport {
  /** The address peers use to reach this transport. */
  readonly localAddress: ServerAddress;
  /** Start delivering incoming messages to `handler`. */
  start(handler: TransportHandler): Promise<void>;
  /**
   * Queue `message` for the server at `address`. Never throws for network
   * failures: undeliverable messages are dropped (Raft retries).
   */
  send(address: ServerAddress, message: Message): void;
  /**
   * Stream a snapshot to the server at `address`. Resolves when the receiver
   * has stored it; rejects when the transfer failed.
   */
  sendSnapshot(
    address: ServerAddress,
    message: InstallSnapshotRequest,
    data: AsyncIterable<Uint8Array>,
  ): Promise<void>;
  /** Stop listening and close every connection. */
  close(): Promise<void>;
}
