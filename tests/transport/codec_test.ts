import assert from "node:assert/strict";
import { Encoder } from "@msgpack/msgpack";
import { EntryType, type Message } from "../../src/core/types.ts";
import {
  decodeMessage,
  encodeMessage,
  encodeMessageShared,
  MESSAGE_TYPE_CODES,
} from "../../src/transport/codec.ts";
import { ProtocolError } from "../../src/transport/errors.ts";
import { seededRandom } from "../../src/transport/memory_transport.ts";

function bytes(n: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}

const samples: Message[] = [
  {
    type: "vote",
    term: 7,
    from: "n1",
    to: "n2",
    lastLogIndex: 123456789,
    lastLogTerm: 6,
    preVote: true,
    leadershipTransfer: false,
  },
  { type: "vote_resp", term: 7, from: "n2", to: "n1", granted: false, preVote: true },
  {
    type: "append",
    term: 2 ** 50,
    from: "leader-ünïcödé-✓",
    to: "n2",
    prevIndex: 41,
    prevTerm: 3,
    commit: 40,
    entries: [
      { index: 42, term: 3, type: EntryType.Normal, data: new Uint8Array([0, 255, 128, 7]) },
      { index: 43, term: 4, type: EntryType.Noop, data: new Uint8Array(0) },
      {
        index: 44,
        term: 4,
        type: EntryType.Configuration,
        data: new TextEncoder().encode(
          '{"servers":[{"id":"n1","address":"127.0.0.1:7001","suffrage":"voter"}]}',
        ),
      },
      { index: 45, term: 4, type: EntryType.Normal, data: bytes(70_000, 2) },
    ],
  },
  {
    type: "append",
    term: 1,
    from: "a",
    to: "b",
    prevIndex: 0,
    prevTerm: 0,
    commit: 0,
    entries: [],
  },
  {
    type: "append_resp",
    term: 3,
    from: "n2",
    to: "n1",
    success: false,
    index: 41,
    hintIndex: 30,
    hintTerm: 2,
  },
  { type: "heartbeat", term: 9, from: "n1", to: "n3", commit: 2 ** 40, context: 17 },
  { type: "heartbeat_resp", term: 9, from: "n3", to: "n1", context: 17 },
  {
    type: "snapshot",
    term: 5,
    from: "n1",
    to: "n4",
    meta: {
      index: 1000,
      term: 4,
      configurationIndex: 900,
      configuration: {
        servers: [
          { id: "n1", address: "127.0.0.1:7001", suffrage: "voter" },
          { id: "n2", address: "[::1]:7002", suffrage: "nonvoter" },
          { id: "n4", address: "host.example:7004", suffrage: "staging" },
        ],
      },
    },
  },
  {
    type: "snapshot",
    term: 1,
    from: "n1",
    to: "n2",
    meta: { index: 0, term: 0, configurationIndex: 0, configuration: { servers: [] } },
  },
  { type: "timeout_now", term: 12, from: "n1", to: "n2" },
];

Deno.test("codec: every message type round-trips", () => {
  const seen = new Set<string>();
  for (const message of samples) {
    const decoded = decodeMessage(encodeMessage(message));
    assert.deepEqual(decoded, message);
    seen.add(message.type);
  }
  assert.deepEqual([...seen].sort(), Object.keys(MESSAGE_TYPE_CODES).sort());
});

Deno.test("codec: type codes are small integers on the wire, messages compact arrays", () => {
  const bytes = encodeMessage({ type: "timeout_now", term: 1, from: "a", to: "b" });
  // fixarray(4), 8, 1, fixstr "a", fixstr "b"
  assert.deepEqual([...bytes], [0x94, 8, 1, 0xa1, 0x61, 0xa1, 0x62]);
});

Deno.test("codec: large entries round-trip as binary views of the input (no copy)", () => {
  const big = bytes(16 * 1024 * 1024 + 3, 3);
  const entries = Array.from({ length: 5 }, (_, i) => ({
    index: 101 + i,
    term: 2,
    type: EntryType.Normal,
    data: i === 2 ? big : bytes(i * 1000, 10 + i),
  }));
  const message: Message = {
    type: "append",
    term: 2,
    from: "n1",
    to: "n2",
    prevIndex: 100,
    prevTerm: 2,
    commit: 99,
    entries,
  };
  const encoded = encodeMessage(message);
  const decoded = decodeMessage(encoded);
  assert.equal(decoded.type, "append");
  if (decoded.type !== "append") return;
  assert.equal(decoded.entries.length, 5);
  for (let i = 0; i < 5; i++) {
    assert.ok(decoded.entries[i].data instanceof Uint8Array);
    assert.equal(decoded.entries[i].data.buffer, encoded.buffer, "entry data is a view");
    assert.deepEqual(decoded.entries[i], entries[i]);
  }
});

Deno.test("codec: encodeMessageShared returns a view valid until the next call", () => {
  const m1: Message = { type: "heartbeat", term: 1, from: "a", to: "b", commit: 1, context: 0 };
  const copy = encodeMessageShared(m1).slice();
  assert.deepEqual(decodeMessage(copy), m1);
  assert.deepEqual(encodeMessage(m1), copy);
});

Deno.test("codec: encoding an unknown message type is a TypeError", () => {
  assert.throws(
    () => encodeMessage({ type: "nope", term: 1 } as unknown as Message),
    TypeError,
  );
});

const encoder = new Encoder();
function wire(value: unknown): Uint8Array {
  return encoder.encode(value);
}

Deno.test("codec: malformed messages are ProtocolErrors naming the problem", () => {
  const cases: [unknown, RegExp][] = [
    [{ type: 1 }, /map|0x81/],
    [[], /at least 4 fields/],
    [[99, 1, "a", "b"], /type code in 1..8, got number 99/],
    [["vote", 1, "a", "b"], /type code/],
    [[8, 1, "a"], /at least 4 fields/],
    [[8, 1, "a", "b", 5], /expected 4 fields, got 5/],
    [
      [8, -1, "a", "b"],
      /timeout_now.term: expected an integer in \[0, 1125899906842624\], got number -1/,
    ],
    [[8, 1.5, "a", "b"], /timeout_now.term: expected an integer/],
    [[8, 2 ** 53, "a", "b"], /timeout_now.term: expected an integer/],
    [[8, 1, 7, "b"], /timeout_now.from: expected a server id of 1 to 1024 characters/],
    [[5, 1, "a", "b", null, 0], /heartbeat.commit/],
    [[2, 1, "a", "b", 1, false], /vote_resp.granted: expected a boolean/],
    [[3, 1, "a", "b", 10, 1, 0, [12, 1, 0, new Uint8Array()]], /expected 11 \(prevIndex \+ 1\)/],
    [[3, 1, "a", "b", 10, 1, 0, [11, 1, 4, new Uint8Array()]], /type: expected 0, 1, 2 or 3/],
    [[3, 1, "a", "b", 10, 1, 0, [11, 1, 0, "text"]], /data: expected binary/],
    [[3, 1, "a", "b", 10, 1, 0, [11, 1, 0]], /4 fields per entry/],
    [[3, 1, "a", "b", 10, 1, 0, { a: 1 }], /map|0x81/],
    [[7, 1, "a", "b", 1, 1, 1, ["n1", "addr", 3]], /suffrage: expected 0, 1 or 2/],
    // Well typed, but no honest peer sends them.
    [
      [5, 2 ** 53 - 1, "a", "b", 0, 0],
      /heartbeat.term: expected an integer in \[0, 1125899906842624\]/,
    ],
    [[5, 2 ** 50 + 1, "a", "b", 0, 0], /heartbeat.term/],
    [[5, 1, "a", "b", 2 ** 50 + 1, 0], /heartbeat.commit/],
    [[8, 1, "", "b"], /timeout_now.from: expected a server id/],
    [[8, 1, "a", "x".repeat(1025)], /timeout_now.to: expected a server id/],
    [[8, 1, "a", "a"], /from and to to name different servers/],
    [[1, 3, "a", "b", 10, 4, false, false], /vote.lastLogTerm: expected an integer in \[0, 3\]/],
    [[3, 3, "a", "b", 10, 4, 0, []], /append.prevTerm: expected an integer in \[0, 3\]/],
    [
      [3, 3, "a", "b", 10, 2, 0, [11, 1, 0, new Uint8Array()]],
      /entries\[0\].term: expected a term in \[2, 3\]/,
    ],
    [
      [3, 3, "a", "b", 10, 2, 0, [11, 4, 0, new Uint8Array()]],
      /entries\[0\].term: expected a term in \[2, 3\]/,
    ],
    [
      [3, 3, "a", "b", 10, 2, 0, [11, 3, 0, new Uint8Array(), 12, 2, 0, new Uint8Array()]],
      /entries\[1\].term: expected a term in \[3, 3\]/,
    ],
    [
      [3, 1, "a", "b", 2 ** 50, 1, 0, [2 ** 50 + 1, 1, 0, new Uint8Array()]],
      /expected indexes up to/,
    ],
    [
      [3, 1, "a", "b", 0, 0, 0, [1, 1, 2, new TextEncoder().encode("{")]],
      /entries\[0\]: expected a configuration, got one that .*not valid JSON/,
    ],
    [[3, 1, "a", "b", 0, 0, 0, [
      1,
      1,
      2,
      new TextEncoder().encode(
        '{"servers":[{"id":"n1","address":"a:1","suffrage":"voter"},{"id":"n1","address":"b:1","suffrage":"voter"}]}',
      ),
    ]], /twice/],
    [[3, 1, "a", "b", 0, 0, 0, [
      1,
      1,
      2,
      new TextEncoder().encode(
        `{"servers":[{"id":"${"x".repeat(2000)}","address":"a:1","suffrage":"voter"}]}`,
      ),
    ]], /servers\[0\].id: expected a server id/],
    [[4, 3, "a", "b", false, 10, 9, 4], /append_resp.hintTerm: expected an integer in \[0, 3\]/],
    [[7, 3, "a", "b", 10, 4, 1, []], /snapshot.meta.term: expected an integer in \[0, 3\]/],
    [
      [7, 3, "a", "b", 10, 3, 11, []],
      /snapshot.meta.configurationIndex: expected an integer in \[0, 10\]/,
    ],
    [[7, 3, "a", "b", 10, 3, 1, ["n1", "a:1", 0, "n1", "b:1", 0]], /n1.*listed twice/],
    [
      [7, 3, "a", "b", 10, 3, 1, ["n1", "", 0]],
      /servers\[0\].address: expected 1 to 1024 characters/,
    ],
    [[7, 1, "a", "b", 1, 1, 1, ["n1", "addr"]], /3 fields per server/],
    [[3, 1, "a", "b", 0, 0, 0, [[1]]], /nested too deep/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(() => decodeMessage(wire(value)), (e: unknown) => {
      assert.ok(e instanceof ProtocolError, `expected ProtocolError for ${JSON.stringify(value)}`);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

Deno.test("codec: structural garbage is rejected before it can exhaust memory", () => {
  // A million nested array headers: the MessagePack library would build them all.
  const nested = new Uint8Array(1_000_000).fill(0x91);
  assert.throws(() => decodeMessage(nested), ProtocolError);
  // An array claiming 2^32-1 items in 5 bytes.
  assert.throws(() => decodeMessage(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])), ProtocolError);
  // A binary claiming 4 GiB.
  assert.throws(
    () => decodeMessage(new Uint8Array([0x91, 0xc6, 0xff, 0xff, 0xff, 0xff, 1])),
    ProtocolError,
  );
  // Trailing bytes after a valid message.
  const valid = encodeMessage({ type: "timeout_now", term: 1, from: "a", to: "b" });
  const trailing = new Uint8Array(valid.length + 1);
  trailing.set(valid);
  assert.throws(() => decodeMessage(trailing), /trailing/);
  assert.throws(() => decodeMessage(new Uint8Array()), ProtocolError);
});

Deno.test("codec: fuzzed input decodes to a valid message or a ProtocolError, nothing else", () => {
  const random = seededRandom(20240601);
  const valid = samples.map((m) => encodeMessage(m)).filter((b) => b.length < 4096);
  let decoded = 0;
  let rejected = 0;
  const attempt = (input: Uint8Array) => {
    try {
      const m = decodeMessage(input);
      // Whatever decodes is a well-formed message.
      assert.ok(Object.hasOwn(MESSAGE_TYPE_CODES, m.type));
      assert.ok(Number.isSafeInteger(m.term) && m.term >= 0);
      assert.equal(typeof m.from, "string");
      decoded++;
    } catch (e) {
      if (!(e instanceof ProtocolError)) {
        throw new Error(`non-ProtocolError for input [${[...input.subarray(0, 64)]}]: ${e}`);
      }
      rejected++;
    }
  };
  for (let i = 0; i < 20_000; i++) {
    const kind = i % 4;
    if (kind === 0) {
      // Pure noise.
      const n = Math.floor(random() * 64);
      const b = new Uint8Array(n);
      for (let j = 0; j < n; j++) b[j] = Math.floor(random() * 256);
      attempt(b);
    } else if (kind === 1) {
      // Noise that starts like a message.
      const n = 2 + Math.floor(random() * 40);
      const b = new Uint8Array(n);
      for (let j = 0; j < n; j++) b[j] = Math.floor(random() * 256);
      b[0] = 0x90 + Math.floor(random() * 9);
      b[1] = 1 + Math.floor(random() * 8);
      attempt(b);
    } else {
      // A valid message with a few bytes flipped or cut short.
      const base = valid[Math.floor(random() * valid.length)].slice();
      const flips = 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips; f++) {
        base[Math.floor(random() * base.length)] = Math.floor(random() * 256);
      }
      attempt(kind === 2 ? base : base.subarray(0, Math.floor(random() * base.length)));
    }
  }
  assert.ok(rejected > 10_000, `most garbage is rejected (${rejected})`);
  assert.ok(decoded > 0, "some mutations still decode to valid messages");
});

/** The wire layout of the module docs, as plain arrays for a generic encoder. */
function wireArray(m: Message): unknown[] {
  const suffrage = { voter: 0, nonvoter: 1, staging: 2 } as const;
  const head = [MESSAGE_TYPE_CODES[m.type], m.term, m.from, m.to];
  switch (m.type) {
    case "vote":
      return [...head, m.lastLogIndex, m.lastLogTerm, m.preVote, m.leadershipTransfer];
    case "vote_resp":
      return [...head, m.granted, m.preVote];
    case "append":
      return [
        ...head,
        m.prevIndex,
        m.prevTerm,
        m.commit,
        m.entries.flatMap((e) => [e.index, e.term, e.type, e.data]),
      ];
    case "append_resp":
      return [...head, m.success, m.index, m.hintIndex, m.hintTerm];
    case "heartbeat":
      return [...head, m.commit, m.context];
    case "heartbeat_resp":
      return [...head, m.context];
    case "snapshot":
      return [
        ...head,
        m.meta.index,
        m.meta.term,
        m.meta.configurationIndex,
        m.meta.configuration.servers.flatMap((s) => [s.id, s.address, suffrage[s.suffrage]]),
      ];
    case "timeout_now":
      return head;
  }
}

Deno.test("codec: messages are written byte for byte as @msgpack/msgpack would write them", () => {
  const reference = new Encoder();
  for (const message of samples) {
    assert.deepEqual(encodeMessage(message), reference.encode(wireArray(message)), message.type);
  }
  const many = Array.from({ length: 70_000 }, (_, k) => ({
    index: 2 ** 33 + k,
    term: 300,
    type: EntryType.Normal,
    data: bytes(k % 300, k),
  }));
  const big: Message = {
    type: "append",
    term: 300,
    from: "x".repeat(40),
    to: "y".repeat(300),
    prevIndex: 2 ** 33 - 1,
    prevTerm: 299,
    commit: 65_536,
    entries: many,
  };
  assert.deepEqual(encodeMessage(big), reference.encode(wireArray(big)));
  assert.deepEqual(decodeMessage(encodeMessage(big)), big);
});
