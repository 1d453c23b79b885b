/**
 * How Raft messages move between servers: the {@linkcode Transport}
 * interface, the TCP transport used by raftd, an in-memory network with fault
 * injection for tests, and the wire codec and framing they share.
 *
 * @example A TCP transport
 * ```ts
 * import { TcpTransport } from "./mod.ts";
 * const transport = await TcpTransport.listen({ address: "127.0.0.1:0" });
 * console.log(transport.localAddress); // e.g. "127.0.0.1:40123"
 * await transport.close();
 * ```
 *
 * @module
 */

export type { Transport, TransportHandler } from "./types.ts";
export {
  type TcpPeerStats,
  TcpTransport,
  type TcpTransportOptions,
  type TcpTransportStats,
  type TcpTransportTlsOptions,
} from "./tcp_transport.ts";
export {
  MemoryNetwork,
  type MemoryNetworkOptions,
  type MemoryNetworkStats,
  type MemoryTimers,
  MemoryTransport,
  seededRandom,
} from "./memory_transport.ts";
export {
  decodeMessage,
  encodeMessage,
  encodeMessageShared,
  MESSAGE_TYPE_CODES,
  PROTOCOL_VERSION,
} from "./codec.ts";
export {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameKind,
  writeFrameHeader,
} from "./frame.ts";
export {
  clusterIdBytes,
  clusterIdFromBytes,
  type ClusterMembership,
  isClusterId,
  newClusterId,
} from "./cluster_id.ts";
export {
  FrameTooLargeError,
  ProtocolError,
  SnapshotRejectedError,
  TransportError,
} from "./errors.ts";
