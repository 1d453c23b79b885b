/**
 * A stranger on a raftd node's Raft port: it completes the handshake (with
 * or without the cluster key, naming whatever server id it likes) and then
 * sends whatever it wants, well-formed messages or raw bytes.
 *
 * @module
 */

import { encodeMessage } from "../../src/transport/codec.ts";
import { encodeFrame, FrameKind } from "../../src/transport/frame.ts";
import { FrameReader } from "../../src/transport/frame_reader.ts";
import {
  clientHandshake,
  ConnectionPurpose,
  HANDSHAKE_MAX_FRAME_BYTES,
  importClusterKey,
} from "../../src/transport/handshake.ts";
import { connect, type NetConn, parseAddress } from "../../src/platform/net.ts";
import type { Message } from "../../src/core/types.ts";

/** How a stranger introduces itself. */
export interface StrangerOptions {
  /** The server id it claims (default "stranger"). */
  id?: string;
  /** The cluster id it announces (from the target's /v1/status). */
  clusterId?: string;
  /** The cluster key, when the stranger has it. */
  key?: Uint8Array;
  /** What the connection is for (default Control; Bulk for appends). */
  purpose?: ConnectionPurpose;
}

/** One handshaken connection to a node's Raft port. */
export class Stranger {
  readonly conn: NetConn;
  readonly reader: FrameReader;
  #closed: Promise<void>;

  private constructor(conn: NetConn, reader: FrameReader, drain: boolean) {
    this.conn = conn;
    this.reader = reader;
    // Drain what the node sends (keepalive pings) and notice when it hangs up;
    // on a snapshot connection the reader is the snapshot writer's.
    this.#closed = !drain ? Promise.resolve() : (async () => {
      try {
        while (await reader.next()) { /* pings */ }
      } catch {
        // reset: closed too
      }
    })();
  }

  /** Connects to `address` and runs the dialer's handshake. */
  static async connect(address: string, options: StrangerOptions = {}): Promise<Stranger> {
    const conn = await connect(parseAddress(address));
    const reader = new FrameReader(conn, HANDSHAKE_MAX_FRAME_BYTES);
    try {
      await clientHandshake(conn, reader, {
        key: options.key === undefined ? null : await importClusterKey(options.key),
        purpose: options.purpose ?? ConnectionPurpose.Control,
        localAddress: "127.0.0.1:1",
        localId: options.id ?? "stranger",
        cluster: options.clusterId === undefined
          ? undefined
          : { clusterId: options.clusterId, adopt: () => Promise.resolve() },
      });
    } catch (e) {
      conn.close();
      throw e;
    }
    reader.decoder.maxFrameBytes = 64 * 1024 * 1024;
    return new Stranger(conn, reader, options.purpose !== ConnectionPurpose.Snapshot);
  }

  /** Sends one well-formed message. */
  async send(message: Message): Promise<void> {
    await this.conn.write(encodeFrame(FrameKind.Message, encodeMessage(message)));
  }

  /** Sends raw bytes (frames or not). */
  async sendRaw(bytes: Uint8Array): Promise<void> {
    await this.conn.write(bytes);
  }

  /** Resolves true when the node closed the connection within `ms`, false otherwise. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      this.#closed.then(() => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms)),
    ]);
    clearTimeout(timer);
    return result;
  }

  /** Hangs up. */
  async close(): Promise<void> {
    this.conn.close();
    await this.#closed;
  }
}

/** What /v1/status says, the fields a stranger needs. */
export interface NodeView {
  id: string;
  state: string;
  term: number;
  lastIndex: number;
  commitIndex: number;
  leader: { id: string; http: string | null } | null;
  clusterId?: string;
}

/** /v1/status of the node at `url`. */
export async function view(url: string, token?: string): Promise<NodeView> {
  const res = await fetch(`${url}/v1/status`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`status of ${url}: ${res.status} ${await res.text()}`);
  return await res.json() as NodeView;
}

/**
 * `t.step`, unless RAFTD_SECURITY_STEP is set and not part of `name`: one
 * finding can then be run alone (e.g. against an older build, to see it fail).
 */
export function step(
  t: Deno.TestContext,
  name: string,
  fn: () => Promise<void>,
): Promise<boolean> {
  const only = Deno.env.get("RAFTD_SECURITY_STEP");
  if (only !== undefined && !name.includes(only)) return Promise.resolve(true);
  return t.step(name, fn);
}
