/**
 * `RedisBroker` against a real redis-server (started by the tests on a free
 * port, see `_redis.ts`): topics shared between two `PubSub`s as two
 * processes would share them, what the broker promises (at most once, in
 * order per publisher), and Redis restarting under load.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { PubSub } from "../src/pubsub.ts";
import type { Message } from "../src/protocol.ts";
import { RedisBroker } from "../src/redis_broker.ts";
import { freePort, REDIS_SKIP, startRedis } from "./_redis.ts";
import { bounded, sleep, within } from "./_wait.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const quiet = () => {};

function broker(url: string): RedisBroker {
  const made = new RedisBroker({ url, onError: quiet, maxReconnectDelay: 200 });
  cleanups.push(() => made.close());
  return made;
}

async function until(what: string, ok: () => boolean, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await sleep(5);
  }
}

describe("RedisBroker arguments", () => {
  test("a URL that is not redis:// and bad limits throw", () => {
    assert.throws(
      () => new RedisBroker({ url: "rediss://x" }),
      /needs a redis:\/\/ URL/,
    );
    assert.throws(() => new RedisBroker({ reconnectDelay: -1 }), RangeError);
    assert.throws(
      () => new RedisBroker({ maxBufferedAmount: NaN }),
      RangeError,
    );
  });

  test(
    "with Redis unreachable, publishes are counted lost and close ends it",
    bounded(async () => {
      const port = await freePort(); // nothing listens there
      const errors: unknown[] = [];
      const made = new RedisBroker({
        url: `redis://127.0.0.1:${port}`,
        onError: (e) => errors.push(e),
      });
      const topics = new PubSub({ broker: made });
      await sleep(50);
      await topics.publish("t", "into the void");
      assert.equal(made.stats.lost, 1);
      assert.equal(made.stats.connected, false);
      assert.ok(errors.length > 0, "the failure was told");
      await topics.close();
    }),
  );
});

describe("RedisBroker with redis-server", { skip: REDIS_SKIP }, () => {
  test(
    "two PubSubs share topics: in order, text and binary, no echo",
    bounded(async () => {
      const redis = await startRedis();
      cleanups.push(() => redis.stop());
      const a = broker(redis.url);
      const b = broker(redis.url);
      const left = new PubSub({ broker: a });
      const right = new PubSub({ broker: b });
      await within(3000, Promise.all([a.ready, b.ready]));
      const onLeft: Message[] = [];
      const onRight: [string, Message][] = [];
      left.listen("rooms/*", (_t, m) => onLeft.push(m));
      right.listen("rooms/*", (t, m) => onRight.push([t, m]));
      for (let i = 0; i < 500; i++) left.publish("rooms/lobby", `m${i}`);
      left.publish("rooms/kitchen", new Uint8Array([0, 255, 10, 13]));
      await until("all 501 on the right", () => onRight.length === 501);
      assert.deepEqual(
        onRight.slice(0, 500).map(([, m]) => m),
        Array.from({ length: 500 }, (_, i) => `m${i}`),
      );
      assert.deepEqual(onRight[500], [
        "rooms/kitchen",
        new Uint8Array([0, 255, 10, 13]),
      ]);
      // The left heard its own messages once, locally, not again via Redis.
      await sleep(50);
      assert.equal(onLeft.length, 501);
      assert.equal(a.stats.published, 501);
      await until("acknowledged", () => a.stats.acknowledged === 501);
      assert.equal(a.stats.lost, 0);
      assert.equal(b.stats.received, 501);
      assert.equal(b.stats.missed, 0);
      assert.equal(right.stats.received, 501);
    }),
  );

  test(
    "Redis restarting under load: publishing resumes, losses are counted",
    bounded(async () => {
      const redis = await startRedis();
      cleanups.push(() => redis.stop());
      const a = broker(redis.url);
      const b = broker(redis.url);
      const left = new PubSub({ broker: a });
      const right = new PubSub({ broker: b });
      await within(3000, Promise.all([a.ready, b.ready]));
      const seen: number[] = [];
      right.listen("load", (_t, m) => seen.push(Number(m)));
      let sent = 0;
      let running = true;
      const load = (async () => {
        while (running) {
          for (let i = 0; i < 20; i++) left.publish("load", String(++sent));
          await sleep(2);
        }
      })();
      await until("flowing", () => seen.length > 200);
      await redis.restart(300);
      const before = seen.length;
      await until(
        "flowing again",
        () =>
          a.stats.connected && b.stats.connected && seen.length > before + 200,
        8000,
      );
      running = false;
      await load;
      const last = sent;
      await until("the last one", () => seen.at(-1) === last);
      // In order, each at most once.
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!);
      const bs = b.stats;
      const as = a.stats;
      assert.ok(as.lost > 0, "messages were lost while Redis was down");
      assert.ok(as.reconnects >= 1 && bs.reconnects >= 1);
      // Every message is either received or counted as missed.
      assert.equal(bs.received + bs.missed, last);
      assert.equal(bs.received, seen.length);
      assert.equal(bs.reordered, 0);
      // The publisher's count is of what it knows it lost: no more than that.
      assert.ok(as.lost <= bs.missed);
      assert.equal(as.published, last);
    }, 20_000),
  );
});
