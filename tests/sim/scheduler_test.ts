/**
 * The simulation's scheduler and virtual clock: events in time order, every
 * microtask settled between two events, pauses and stalls that hold work
 * back and then drain it, crashes that drop it, and clocks with drift, boot
 * time and wall-clock skew.
 */

import assert from "node:assert/strict";
import { Scheduler } from "./scheduler.ts";
import { VirtualClock } from "./virtual_clock.ts";

Deno.test("scheduler: events run in time order, ties in the order they were queued", async () => {
  const s = new Scheduler();
  const a = s.createLoop("a");
  const b = s.createLoop("b");
  const order: string[] = [];
  a.schedule(20, () => order.push("a20"));
  b.schedule(10, () => order.push("b10"));
  a.schedule(10, () => order.push("a10"));
  s.world.schedule(0, () => order.push("w0"));
  await s.runUntil(100);
  assert.deepEqual(order, ["w0", "b10", "a10", "a20"]);
  assert.equal(s.now, 100);
  assert.equal(s.events, 4);
});

Deno.test("scheduler: every microtask an event starts settles before the next event", async () => {
  const s = new Scheduler();
  const loop = s.createLoop("n");
  const order: string[] = [];
  loop.schedule(1, () => {
    (async () => {
      for (let i = 0; i < 50; i++) await Promise.resolve();
      order.push("chain of 50 awaits done");
      await new Promise<void>((r) => queueMicrotask(r));
      order.push("nested microtask done");
    })();
  });
  loop.schedule(1, () => order.push("next event"));
  await s.runUntil(10);
  assert.deepEqual(order, ["chain of 50 awaits done", "nested microtask done", "next event"]);
});

Deno.test("scheduler: a paused loop holds its events back and drains them in order on resume", async () => {
  const s = new Scheduler();
  const n = s.createLoop("n");
  const ran: string[] = [];
  n.schedule(10, () => ran.push(`x@${s.now}`));
  n.schedule(20, () => ran.push(`y@${s.now}`));
  s.world.schedule(5, () => n.pause());
  s.world.schedule(15, () => ran.push(`world@${s.now}`));
  s.world.schedule(40, () => n.resume());
  n.schedule(60, () => ran.push(`z@${s.now}`));
  await s.runUntil(100);
  assert.deepEqual(ran, ["world@15", "x@40", "y@40", "z@60"]);
});

Deno.test("scheduler: a stall blocks the loop after what is already queued", async () => {
  const s = new Scheduler();
  const n = s.createLoop("n");
  const ran: string[] = [];
  n.schedule(10, () => {
    ran.push(`before@${s.now}`);
    n.stall(100);
    n.schedule(0, () => ran.push(`queued behind the stall@${s.now}`));
  });
  n.schedule(50, () => ran.push(`timer@${s.now}`));
  await s.runUntil(500);
  assert.deepEqual(ran, [
    "before@10",
    "queued behind the stall@110",
    "timer@110",
  ]);
});

Deno.test("scheduler: a killed loop runs nothing again; cancelled events do not run", async () => {
  const s = new Scheduler();
  const n = s.createLoop("n");
  const ran: string[] = [];
  n.schedule(10, () => ran.push("dead"));
  const e = s.world.schedule(5, () => ran.push("cancelled"));
  s.world.cancel(e);
  n.kill();
  n.schedule(1, () => ran.push("after death"));
  await s.runUntil(100);
  assert.deepEqual(ran, []);
  assert.equal(n.alive, false);
});

Deno.test("scheduler: a throwing callback goes to onError with its loop", async () => {
  const errors: string[] = [];
  const s = new Scheduler({
    onError: (e, loop) => errors.push(`${loop.name}: ${(e as Error).message}`),
  });
  s.createLoop("n1").schedule(1, () => {
    throw new Error("boom");
  });
  s.world.schedule(2, () => {});
  await s.runUntil(10);
  assert.deepEqual(errors, ["n1: boom"]);
  const strict = new Scheduler();
  strict.world.schedule(1, () => {
    throw new Error("rethrown");
  });
  await assert.rejects(strict.runUntil(10), /rethrown/);
});

Deno.test("scheduler: refuses to schedule in the past", () => {
  const s = new Scheduler();
  assert.throws(
    () => s.enqueue({ time: -1, seq: 0, loop: s.world, fn: () => {}, cancelled: false }),
    /before now/,
  );
});

Deno.test("virtual clock: drift, boot time and wall-clock skew", async () => {
  const s = new Scheduler();
  await s.runUntil(1000);
  const fast = new VirtualClock(s.createLoop("fast"), {
    drift: 0.25,
    bootMs: 7,
    wallEpochMs: 1_000_000,
  });
  assert.equal(fast.now(), 7);
  let firedTrue = -1;
  let firedLocal = -1;
  fast.setTimeout(() => {
    firedTrue = s.now;
    firedLocal = fast.now();
  }, 250);
  await s.runUntil(2000);
  assert.equal(firedTrue, 1200); // 250 ms on a clock 25% fast take 200 ms of true time
  assert.equal(firedLocal, 257);
  assert.equal(fast.now(), 7 + 1000 * 1.25);
  assert.equal(fast.wallClock(), 1_000_000 + 2000 * 1.25);
  assert.throws(() => new VirtualClock(s.world, { drift: -1 }), /drift must be/);
});

Deno.test("virtual clock: time runs on while the process is paused", async () => {
  const s = new Scheduler();
  const loop = s.createLoop("n");
  const clock = new VirtualClock(loop);
  const seen: number[] = [];
  clock.setTimeout(() => seen.push(clock.now()), 10);
  loop.pause();
  s.world.schedule(500, () => loop.resume());
  await s.runUntil(1000);
  assert.deepEqual(seen, [500]);
});

Deno.test("virtual clock: queueTask runs after what is due now and before later timers", async () => {
  const s = new Scheduler();
  const loop = s.createLoop("n");
  const clock = new VirtualClock(loop);
  const order: string[] = [];
  loop.schedule(5, () => {
    clock.setTimeout(() => order.push("timer 1ms"), 1);
    loop.schedule(0, () => order.push("io due now"));
    clock.queueTask(() => order.push("task 1"));
    clock.queueTask(() => order.push("task 2"));
  });
  await s.runUntil(100);
  assert.deepEqual(order, ["io due now", "task 1", "task 2", "timer 1ms"]);
});

Deno.test("virtual clock: clearTimeout, close drops tasks but not timers", async () => {
  const s = new Scheduler();
  const clock = new VirtualClock(s.createLoop("n"));
  const ran: string[] = [];
  const t = clock.setTimeout(() => ran.push("cleared"), 5);
  clock.clearTimeout(t);
  clock.clearTimeout(undefined);
  clock.clearTimeout(42);
  clock.setTimeout(() => ran.push("timer"), 5);
  clock.queueTask(() => ran.push("dropped task"));
  clock.close();
  clock.queueTask(() => ran.push("after close"));
  await s.runUntil(100);
  assert.deepEqual(ran, ["timer"]);
});

Deno.test("scheduler: a resumed loop runs its timers first, then its sources in any order, each in order", async () => {
  const orders = new Set<string>();
  for (let seed = 1; seed <= 30; seed++) {
    let x = seed;
    const s = new Scheduler({ random: () => (x = (x * 48271) % 2147483647) / 2147483647 });
    const n = s.createLoop("n");
    const ran: string[] = [];
    n.pause();
    n.schedule(1, () => ran.push("a1"), "a");
    n.schedule(2, () => ran.push("b1"), "b");
    n.schedule(3, () => ran.push("timer"));
    n.schedule(4, () => ran.push("a2"), "a");
    n.schedule(5, () => ran.push("b2"), "b");
    s.world.scheduleAt(10, () => n.resume());
    await s.runUntil(20);
    assert.equal(ran[0], "timer");
    assert.ok(ran.indexOf("a1") < ran.indexOf("a2") && ran.indexOf("b1") < ran.indexOf("b2"));
    orders.add(ran.join(" "));
  }
  assert.ok(orders.size > 2, `only ${[...orders].join(" | ")}`);
});
