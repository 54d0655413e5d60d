/**
 * The server's handshake deadlines (src/_deadline_queue.ts): one timer for
 * deadlines of one length, expiring in the order they were set.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DeadlineQueue, DeadlineQueues } from "../src/_deadline_queue.ts";
import { bounded, sleep, within } from "./_wait.ts";

/**
 * A queue that records when each key expired, ms after `start`, then runs
 * `then` (from within its onExpired).
 */
function recording(
  duration: number,
  then: (key: string, queue: DeadlineQueue<string>) => void = () => {},
) {
  const start = performance.now();
  const expired: [string, number][] = [];
  let wake = () => {};
  const queue: DeadlineQueue<string> = new DeadlineQueue(duration, (key) => {
    expired.push([key, performance.now() - start]);
    then(key, queue);
    wake();
  });
  const next = () => new Promise<void>((resolve) => (wake = resolve));
  return { queue, expired, next };
}

describe("DeadlineQueue", () => {
  test(
    "DeadlineQueue expires each key its duration after it was added, in order",
    bounded(async () => {
      const { queue, expired, next } = recording(100);
      const a = queue.add("a");
      await sleep(40);
      const b = queue.add("b");
      assert.equal(queue.size, 2);
      assert.ok(a.list !== null && b.list !== null);
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["a"]);
      assert.equal(a.list, null, "stopped before its callback");
      assert.equal(a.unlink(), false);
      assert.equal(queue.size, 1);
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["a", "b"]);
      const [[, aAt], [, bAt]] = expired as [
        [string, number],
        [string, number],
      ];
      assert.ok(aAt >= 95 && aAt < 400, `a expired at ${aAt} ms`);
      assert.ok(bAt >= 135 && bAt < 450, `b expired at ${bAt} ms`);
      queue.clear();
    }),
  );

  test(
    "DeadlineQueue never expires a stopped deadline, and keeps the others'",
    bounded(async () => {
      const { queue, expired, next } = recording(80);
      const gone = queue.add("gone");
      await sleep(20);
      queue.add("kept");
      assert.equal(gone.unlink(), true);
      assert.equal(gone.unlink(), false);
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["kept"]);
      assert.ok(expired[0]![1] >= 95, `kept expired at ${expired[0]![1]} ms`);
      queue.clear();
    }),
  );

  test(
    "DeadlineQueue restarts a key stopped and added again, behind the others",
    bounded(async () => {
      const { queue, expired, next } = recording(80);
      const a = queue.add("a");
      queue.add("b");
      await sleep(40);
      a.unlink();
      queue.add("a");
      await within(1_000, next());
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["b", "a"]);
      assert.ok(expired[1]![1] >= 115, `a expired at ${expired[1]![1]} ms`);
      queue.clear();
    }),
  );

  test(
    "DeadlineQueue keeps one timer, for the oldest deadline, when onExpired starts another",
    bounded(async () => {
      // "c" is started and stopped at once: its timer (due 60 ms from then)
      // must not outlive the queue's last deadline (Deno's sanitizer checks).
      const { queue, expired, next } = recording(60, (key, queue) => {
        if (key === "a") queue.add("c").unlink();
      });
      queue.add("a");
      await sleep(30);
      queue.add("b");
      await within(1_000, next());
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["a", "b"]);
      const bAt = expired[1]![1];
      assert.ok(bAt >= 85 && bAt < 400, `b expired at ${bAt} ms`);
      assert.equal(queue.size, 0);
    }),
  );

  test(
    "DeadlineQueue.clear stops every deadline and its timer",
    bounded(async () => {
      const { queue, expired } = recording(30);
      const [a] = ["a", "b", "c"].map((key) => queue.add(key));
      queue.clear();
      assert.equal(a!.list, null);
      assert.equal(a!.unlink(), false);
      assert.equal(queue.size, 0);
      await sleep(80);
      assert.deepEqual(expired, []);
      // Still usable afterwards.
      const d = queue.add("d");
      assert.equal(queue.size, 1);
      assert.equal(d.unlink(), true);
    }),
  );
});

describe("DeadlineQueues", () => {
  test(
    "DeadlineQueues runs deadlines of each length apart",
    bounded(async () => {
      const start = performance.now();
      const expired: [string, number][] = [];
      let wake = () => {};
      const queues = new DeadlineQueues<string>((key) => {
        expired.push([key, performance.now() - start]);
        wake();
      });
      const next = () => new Promise<void>((resolve) => (wake = resolve));
      queues.add(120, "slow");
      queues.add(40, "fast");
      const stopped = queues.add(40, "stopped");
      assert.equal(stopped.unlink(), true);
      assert.equal(stopped.unlink(), false, "already stopped");
      await within(1_000, next());
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["fast", "slow"]);
      assert.ok(expired[0]![1] >= 35, `fast expired at ${expired[0]![1]} ms`);
      assert.ok(expired[1]![1] >= 115, `slow expired at ${expired[1]![1]} ms`);
      // Every queue is empty, so no timer is left (the sanitizers check).
    }),
  );
});
