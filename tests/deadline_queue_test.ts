/**
 * The server's handshake deadlines (src/_deadline_queue.ts): one timer for
 * deadlines of one length, expiring in the order they were set.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DeadlineQueue, DeadlineQueues } from "../src/_deadline_queue.ts";
import { bounded, sleep, within } from "./_wait.ts";

/** A queue that records when each key expired, ms after `start`. */
function recording(duration: number) {
  const start = performance.now();
  const expired: [string, number][] = [];
  let wake = () => {};
  const queue = new DeadlineQueue<string>(duration, (key) => {
    expired.push([key, performance.now() - start]);
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
      queue.add("a");
      await sleep(40);
      queue.add("b");
      assert.ok(queue.has("a") && queue.has("b"));
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["a"]);
      assert.equal(queue.has("a"), false, "removed before its callback");
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["a", "b"]);
      const [[, a], [, b]] = expired as [[string, number], [string, number]];
      assert.ok(a >= 95 && a < 400, `a expired at ${a} ms`);
      assert.ok(b >= 135 && b < 450, `b expired at ${b} ms`);
      queue.clear();
    }),
  );

  test(
    "DeadlineQueue never expires a deleted key, and keeps the others' deadlines",
    bounded(async () => {
      const { queue, expired, next } = recording(80);
      queue.add("gone");
      await sleep(20);
      queue.add("kept");
      assert.equal(queue.delete("gone"), true);
      assert.equal(queue.delete("gone"), false);
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["kept"]);
      assert.ok(expired[0]![1] >= 95, `kept expired at ${expired[0]![1]} ms`);
      queue.clear();
    }),
  );

  test(
    "DeadlineQueue restarts a key added again, behind the others",
    bounded(async () => {
      const { queue, expired, next } = recording(80);
      queue.add("a");
      queue.add("b");
      await sleep(40);
      queue.add("a");
      await within(1_000, next());
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["b", "a"]);
      assert.ok(expired[1]![1] >= 115, `a expired at ${expired[1]![1]} ms`);
      queue.clear();
    }),
  );

  test(
    "DeadlineQueue.clear stops every deadline and its timer",
    bounded(async () => {
      const { queue, expired } = recording(30);
      for (const key of ["a", "b", "c"]) queue.add(key);
      queue.clear();
      assert.equal(queue.has("a"), false);
      await sleep(80);
      assert.deepEqual(expired, []);
      // Still usable afterwards.
      queue.add("d");
      assert.equal(queue.has("d"), true);
      queue.clear();
    }),
  );
});

describe("DeadlineQueues", () => {
  test(
    "DeadlineQueues runs deadlines of each length apart, and delete stops one of its length only",
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
      queues.add(40, "stopped");
      assert.equal(queues.delete(120, "stopped"), false, "not of that length");
      assert.equal(queues.delete(40, "stopped"), true);
      assert.equal(queues.delete(40, "stopped"), false, "already stopped");
      assert.equal(
        queues.delete(999, "slow"),
        false,
        "no queue of that length",
      );
      await within(1_000, next());
      await within(1_000, next());
      assert.deepEqual(expired.map(([key]) => key), ["fast", "slow"]);
      assert.ok(expired[0]![1] >= 35, `fast expired at ${expired[0]![1]} ms`);
      assert.ok(expired[1]![1] >= 115, `slow expired at ${expired[1]![1]} ms`);
      // Every queue is empty, so no timer is left (the sanitizers check).
    }),
  );
});
