/**
 * Security, seeded fuzzing of live nodes: hundreds of connections to the Raft
 * ports of a three-node cluster, most past a valid handshake, carrying random
 * and mutated frames (hostile field values, mutated encodings, wrong frame
 * kinds, oversized lengths, forged snapshot streams). Afterwards every node
 * must still run and the cluster must still commit writes.
 *
 * The input is a function of the seed: `RAFTD_FUZZ_SEED=N` replays a run,
 * `RAFTD_FUZZ_CONNECTIONS=K` changes its length.
 */

import { strict as assert } from "node:assert";
import { Encoder } from "@msgpack/msgpack";
import type { Message } from "../../src/core/types.ts";
import { encodePut } from "../../src/server/kv_command.ts";
import { encodeMessage } from "../../src/transport/codec.ts";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameKind,
  writeFrameHeader,
} from "../../src/transport/frame.ts";
import { ConnectionPurpose } from "../../src/transport/handshake.ts";
import { seededRandom } from "../../src/transport/memory_transport.ts";
import { connect, parseAddress } from "../../src/platform/net.ts";
import { e2eTest, http, type Node, sleep } from "../e2e/helpers.ts";
import { Stranger, view } from "./_stranger.ts";
import { alive, startThree, writesCommit } from "./_cluster.ts";

const SEED = Number(Deno.env.get("RAFTD_FUZZ_SEED") ?? "20260612");
const CONNECTIONS = Number(Deno.env.get("RAFTD_FUZZ_CONNECTIONS") ?? "240");

type Random = () => number;

const msgpack = new Encoder();

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

function int(random: Random, max: number): number {
  return Math.floor(random() * max);
}

function bytes(random: Random, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = int(random, 256);
  return out;
}

/** Values a hostile peer would try for a number field, valid or not. */
function number(random: Random): unknown {
  return pick(random, [
    () => int(random, 4),
    () => int(random, 64),
    () => 2 ** 31 + int(random, 10),
    () => 2 ** 40 + int(random, 2 ** 20),
    () => 2 ** 50,
    () => 2 ** 50 + 1,
    () => 2 ** 53 - 1,
    () => -1,
    () => 1.5,
    () => "7",
    () => null,
    () => true,
  ])();
}

function id(random: Random, ids: readonly string[]): unknown {
  return pick(random, [
    () => pick(random, ids),
    () => "fuzz",
    () => "",
    () => "x".repeat(2000),
    () => 42,
  ])();
}

function configuration(random: Random, ids: readonly string[]): Uint8Array {
  const text = pick(random, [
    "{",
    "null",
    '{"servers":[]}',
    '{"servers":[{"id":"fuzz","address":"127.0.0.1:1","suffrage":"voter"}]}',
    `{"servers":[${ids.map((i) => `{"id":"${i}","address":"x:1","suffrage":"voter"}`)}]}`,
    '{"servers":[{"id":"a","address":"","suffrage":"king"}]}',
    '{"servers":[{"id":"a","address":"b:1","suffrage":"voter"},{"id":"a","address":"c:1","suffrage":"voter"}]}',
  ]);
  return new TextEncoder().encode(text);
}

/** A message array (the wire layout) with hostile values in its fields. */
function hostileMessage(random: Random, ids: readonly string[], to: string): unknown[] {
  const code = 1 + int(random, 8);
  const head = [code, number(random), id(random, ids), random() < 0.8 ? to : id(random, ids)];
  switch (code) {
    case 1:
      return [...head, number(random), number(random), random() < 0.5, random() < 0.5];
    case 2:
      return [...head, random() < 0.5, random() < 0.5];
    case 3: {
      const prev = number(random);
      const entries: unknown[] = [];
      const n = int(random, 4);
      for (let i = 0; i < n; i++) {
        const type = pick(random, [0, 1, 2, 3, -1]);
        entries.push(
          typeof prev === "number" ? prev + 1 + i : number(random),
          number(random),
          type,
          type === 2 ? configuration(random, ids) : pick(random, [
            () => encodePut(`fuzz-${int(random, 100)}`, bytes(random, 8)),
            () => bytes(random, int(random, 64)),
            () => "not binary",
          ])(),
        );
      }
      return [...head, prev, number(random), number(random), entries];
    }
    case 4:
      return [...head, random() < 0.5, number(random), number(random), number(random)];
    case 5:
      return [...head, number(random), number(random)];
    case 6:
      return [...head, number(random)];
    case 7: {
      const servers = random() < 0.5 ? ["fuzz", "127.0.0.1:1", 0] : [id(random, ids), "", 7];
      return [...head, number(random), number(random), number(random), servers];
    }
    default:
      return head;
  }
}

/** A well-formed message, to be mutated. */
function validMessage(random: Random, to: string): Message {
  const term = 1 + int(random, 6);
  return pick<() => Message>(random, [
    () => ({ type: "heartbeat", term, from: "fuzz", to, commit: int(random, 50), context: 1 }),
    () => ({
      type: "append",
      term,
      from: "fuzz",
      to,
      prevIndex: int(random, 30),
      prevTerm: int(random, term + 1),
      commit: int(random, 60),
      entries: [{
        index: 0,
        term,
        type: 0,
        data: encodePut("fuzz", new Uint8Array([1])),
      }],
    }),
    () => ({ type: "timeout_now", term, from: "fuzz", to }),
    () => ({
      type: "vote",
      term,
      from: "fuzz",
      to,
      lastLogIndex: int(random, 100),
      lastLogTerm: int(random, term + 1),
      preVote: random() < 0.5,
      leadershipTransfer: random() < 0.5,
    }),
  ])();
}

function mutate(random: Random, input: Uint8Array): Uint8Array {
  const out = input.slice();
  switch (int(random, 3)) {
    case 0:
      for (let i = 0, n = 1 + int(random, 4); i < n; i++) {
        out[int(random, out.length)] = int(random, 256);
      }
      return out;
    case 1:
      return out.subarray(0, int(random, out.length));
    default: {
      const longer = new Uint8Array(out.length + 1 + int(random, 16));
      longer.set(out);
      longer.set(bytes(random, longer.length - out.length), out.length);
      return longer;
    }
  }
}

/** One frame a hostile peer might send after its handshake. */
function hostileFrame(random: Random, ids: readonly string[], to: string): Uint8Array {
  switch (int(random, 6)) {
    case 0:
    case 1:
      return encodeFrame(FrameKind.Message, msgpack.encode(hostileMessage(random, ids, to)));
    case 2: {
      const m = validMessage(random, to);
      if (m.type === "append") m.entries[0].index = m.prevIndex + 1;
      return encodeFrame(FrameKind.Message, mutate(random, encodeMessage(m)));
    }
    case 3:
      return encodeFrame(
        pick(random, [0, 1, 4, 6, 32, 33, 35, 99, 255]),
        bytes(random, int(random, 40)),
      );
    case 4: {
      // A header announcing far more than will ever come.
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      writeFrameHeader(header, 0, FrameKind.Message, pick(random, [70_000, 2 ** 26, 2 ** 32 - 1]));
      return header;
    }
    default:
      return bytes(random, 1 + int(random, 100));
  }
}

/** A snapshot connection's stream: a begin frame (hostile or mutated), chunks, maybe an end. */
function hostileSnapshot(random: Random, ids: readonly string[], to: string): Uint8Array[] {
  const begin = random() < 0.5 ? msgpack.encode(hostileMessage(random, ids, to)) : mutate(
    random,
    encodeMessage({
      type: "snapshot",
      term: 1 + int(random, 5),
      from: "fuzz",
      to,
      meta: {
        index: int(random, 1000),
        term: 1,
        configurationIndex: 0,
        configuration: { servers: [{ id: "fuzz", address: "127.0.0.1:1", suffrage: "voter" }] },
      },
    }),
  );
  const frames = [encodeFrame(FrameKind.SnapshotBegin, begin)];
  for (let i = 0, n = int(random, 4); i < n; i++) {
    frames.push(encodeFrame(FrameKind.SnapshotChunk, bytes(random, int(random, 2000))));
  }
  if (random() < 0.5) frames.push(encodeFrame(FrameKind.SnapshotEnd, new Uint8Array()));
  return frames;
}

async function attack(
  random: Random,
  target: Node,
  ids: readonly string[],
  clusterId: string | undefined,
  key: Uint8Array | undefined,
): Promise<void> {
  const kind = int(random, 10);
  if (kind === 0) {
    // No handshake at all: bytes straight at the port.
    const conn = await connect(parseAddress(target.raftAddress));
    try {
      await conn.write(bytes(random, 1 + int(random, 300)));
    } catch {
      // closed by the node: fine
    }
    conn.close();
    return;
  }
  const purpose = kind === 1
    ? ConnectionPurpose.Snapshot
    : pick(random, [ConnectionPurpose.Bulk, ConnectionPurpose.Control]);
  const stranger = await Stranger.connect(target.raftAddress, {
    id: random() < 0.7 ? "fuzz" : pick(random, ["fuzz-2", ...ids]),
    clusterId,
    key,
    purpose,
  });
  try {
    const frames = purpose === ConnectionPurpose.Snapshot
      ? hostileSnapshot(random, ids, target.id)
      : Array.from({ length: 1 + int(random, 5) }, () => hostileFrame(random, ids, target.id));
    for (const frame of frames) await stranger.sendRaw(frame);
  } catch {
    // the node hung up on us: fine
  } finally {
    await stranger.close();
  }
}

async function fuzzCluster(key: string | undefined): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftd-sec-fuzz-" });
  let nodes: Node[] = [];
  let ok = false;
  try {
    let extra: string[] = [];
    if (key !== undefined) {
      await Deno.writeTextFile(`${dir}/key`, key, { mode: 0o600 });
      extra = ["--cluster-key-file", `${dir}/key`];
    }
    nodes = await startThree(dir, extra);
    const clusterId = (await view(nodes[0].url)).clusterId;
    const ids = nodes.map((n) => n.id);
    const keyBytes = key === undefined ? undefined : new TextEncoder().encode(key);
    const random = seededRandom(SEED);
    // A few attackers at once, each with its own stream of the seed's randomness.
    const streams = Array.from({ length: 4 }, () => seededRandom(int(random, 2 ** 32)));
    let next = 0;
    await Promise.all(streams.map(async (r) => {
      while (next < CONNECTIONS) {
        next++;
        await attack(r, pick(r, nodes), ids, clusterId, keyBytes).catch(() => {});
      }
    }));
    await sleep(500);
    for (const n of nodes) {
      assert.ok(
        await alive(n),
        `${n.id} stopped under fuzzing (replay: RAFTD_FUZZ_SEED=${SEED}):\n${n.logs()}`,
      );
    }
    await writesCommit(nodes, "after-fuzz");
    for (const n of nodes) {
      const r = await http(`${n.url}/v1/kv/after-fuzz`);
      assert.equal(r.status, 200, `${n.id}: ${r.text}`);
    }
    ok = true;
  } finally {
    for (const n of nodes) await n.stop();
    if (!ok) { for (const n of nodes) console.error(n.logs()); }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

e2eTest({
  name:
    `security: seeded fuzzing of the Raft ports leaves every node up and the cluster writable (seed ${SEED})`,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => fuzzCluster(undefined),
});

e2eTest({
  name:
    `security: seeded fuzzing by a holder of the cluster key leaves every node up and the cluster writable (seed ${SEED})`,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => fuzzCluster("the cluster key, known to the fuzzer too"),
});
