import assert from "node:assert/strict";
import { RealClock } from "../../src/platform/clock.ts";

Deno.test("RealClock runs queued tasks in order, as macrotasks after microtasks", async () => {
  const clock = new RealClock();
  const order: string[] = [];
  await new Promise<void>((resolve) => {
    clock.queueTask(() => order.push("task 1"));
    clock.queueTask(() => {
      order.push("task 2");
      clock.queueTask(() => {
        order.push("task 3");
        resolve();
      });
    });
    queueMicrotask(() => order.push("microtask"));
  });
  assert.deepEqual(order, ["microtask", "task 1", "task 2", "task 3"]);
  clock.close();
});

Deno.test("RealClock drops tasks after close and keeps time monotonic", async () => {
  const clock = new RealClock();
  let ran = false;
  clock.queueTask(() => ran = true);
  clock.close();
  clock.queueTask(() => ran = true);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(ran, false);
  const a = clock.now();
  const b = clock.now();
  assert.ok(b >= a);
  assert.ok(Math.abs(clock.wallClock() - Date.now()) < 1000);
});

Deno.test("RealClock timers fire and can be cancelled", async () => {
  const clock = new RealClock();
  let cancelled = false;
  const handle = clock.setTimeout(() => cancelled = true, 1);
  clock.clearTimeout(handle);
  await new Promise<void>((resolve) => clock.setTimeout(resolve, 2));
  assert.equal(cancelled, false);
  clock.close();
});
