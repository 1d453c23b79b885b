import assert from "node:assert/strict";
import type { NodeContext } from "../../src/node/context.ts";
import { LogLoader } from "../../src/node/log_loader.ts";
import { NodeTimers } from "../../src/node/timers.ts";
import { MemoryLogStore } from "../../src/storage/memory_log_store.ts";
import { FakeClock } from "./_fake_clock.ts";

Deno.test("a failed read of older entries is reported to the node's own logger (config.logger)", async () => {
  // The loader logged through a module-level LogTape logger, so a program
  // that passed its own `logger` (or the simulation's per-server one) never
  // saw these warnings, and they named no server.
  const warnings: string[] = [];
  const clock = new FakeClock();
  const loaded: unknown[] = [];
  const node = {
    id: "n1",
    core: { loaded: (...args: unknown[]) => loaded.push(args) },
    clock,
    timers: new NodeTimers(clock),
    log: {
      debug() {},
      info() {},
      warn: (message: string) => warnings.push(message),
      error() {},
    },
    config: () => ({ storageTimeout: 1000 }),
    failure: () => undefined,
    isShutdown: () => false,
    fail() {},
    scheduleReady() {},
  } as unknown as NodeContext;
  const store = new MemoryLogStore();
  store.getLogs = () => Promise.reject(new Error("disk unplugged"));
  const loader = new LogLoader(node, store);
  loader.load({ id: 1, lo: 1, hi: 10, maxBytes: 1 << 20 });
  for (let i = 0; i < 10 && warnings.length === 0; i++) await Promise.resolve();
  assert.deepEqual(warnings, ["reading log entries {lo}..{hi} failed: {error}"]);
  assert.equal(loader.reads, 1);
});
