/**
 * `PubSub`: globs, subscriptions, the shared frame, ordering with other
 * sends, the slow-subscriber policies, over in-memory pipes and real
 * sockets.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/client.ts";
import type { ByteStream, WebSocketConnection } from "../src/connection.ts";
import { type DropEvent, matchTopic, PubSub } from "../src/pubsub.ts";
import type { Message } from "../src/protocol.ts";
import { serve } from "../src/server.ts";
import { takeover } from "../src/takeover.ts";
import { closeOf, pipe, RawPeer } from "./_pipe.ts";
import { Opcode } from "../src/frame.ts";
import { bounded, sleep, within } from "./_wait.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch { /* already gone */ }
  }
});

/** A server end and a client end over an in-memory pipe. */
function pair(
  options: { highWaterMark?: number; extensions?: boolean } = {},
): { server: WebSocketConnection; client: WebSocketConnection } {
  const [a, b] = pipe({ highWaterMark: options.highWaterMark ?? 64 * 1024 });
  const server = takeover(a, {
    role: "server",
    keepalive: false,
    ...(options.extensions
      ? { extensions: [{ name: "x-test", params: {} }] }
      : {}),
  });
  const client = takeover(b, { role: "client", keepalive: false });
  cleanups.push(() => {
    a.close?.();
    b.close?.();
  });
  return { server, client };
}

/** A server end whose every write is recorded (and taken at once). */
function recorded(): { server: WebSocketConnection; writes: Uint8Array[] } {
  const writes: Uint8Array[] = [];
  let end = () => {};
  const stream: ByteStream = {
    readable: new ReadableStream<Uint8Array>({
      start(controller) {
        end = () => controller.close();
      },
    }),
    writable: new WritableStream<Uint8Array>({
      write(chunk) {
        writes.push(chunk);
      },
    }),
  };
  const server = takeover(stream, { role: "server", keepalive: false });
  // The peer's end of stream ends it, with no close timer left running.
  cleanups.push(() => {
    end();
    return server.closed;
  });
  return { server, writes };
}

async function take(connection: WebSocketConnection, n: number) {
  const got: Message[] = [];
  if (n === 0) return got;
  for await (const message of connection) {
    got.push(message);
    if (got.length === n) break;
  }
  return got;
}

describe("matchTopic", () => {
  test("* stays within a segment, ** crosses them, ? is one character", () => {
    assert.ok(matchTopic("rooms/*", "rooms/lobby"));
    assert.ok(!matchTopic("rooms/*", "rooms/a/b"));
    assert.ok(!matchTopic("rooms/*", "room/lobby"));
    assert.ok(matchTopic("rooms/**", "rooms/a/b"));
    assert.ok(matchTopic("a?c", "abc"));
    assert.ok(!matchTopic("a?c", "a/c"));
    assert.ok(matchTopic("a.c", "a.c"));
    assert.ok(!matchTopic("a.c", "abc"), "regexp characters are literal");
    assert.ok(matchTopic("plain", "plain"));
  });
  test("rejects what is not a topic", () => {
    assert.throws(() => matchTopic("", "a"), RangeError);
    assert.throws(() => matchTopic(1 as unknown as string, "a"), TypeError);
  });
});

describe("PubSub arguments", () => {
  test("bad policies and messages throw at the call", () => {
    assert.throws(
      () => new PubSub({ slow: "drop" as "skip" }),
      /slow must be "wait", "skip" or "close"/,
    );
    assert.throws(() => new PubSub({ maxBufferedAmount: -1 }), RangeError);
    const topics = new PubSub();
    assert.throws(
      () => topics.setPolicy("a", { slow: "x" as "wait" }),
      TypeError,
    );
    assert.throws(() => topics.publish("", "x"), RangeError);
    assert.throws(
      () => topics.publish("a", 3 as unknown as string),
      /Cannot publish number/,
    );
    assert.throws(
      () => topics.subscribe({} as WebSocketConnection, "a"),
      TypeError,
    );
  });
});

describe("PubSub publish", () => {
  test(
    "reaches exact and glob subscribers once each, not others",
    bounded(async () => {
      const topics = new PubSub();
      const one = pair();
      const two = pair();
      const other = pair();
      topics.subscribe(one.server, "rooms/lobby");
      topics.subscribe(one.server, "rooms/*"); // both match: still once
      topics.subscribe(two.server, "rooms/**");
      topics.subscribe(other.server, "rooms/kitchen");
      assert.equal(topics.subscriberCount("rooms/lobby"), 2);
      await topics.publish("rooms/lobby", "hi");
      await topics.publish("rooms/lobby", new Uint8Array([1, 2]));
      await topics.publish("rooms/kitchen", "k");
      assert.deepEqual(await take(one.client, 3), [
        "hi",
        new Uint8Array([1, 2]),
        "k",
      ]);
      assert.deepEqual(await take(two.client, 3), [
        "hi",
        new Uint8Array([1, 2]),
        "k",
      ]);
      assert.deepEqual(await take(other.client, 1), ["k"]);
      const stats = topics.stats;
      assert.equal(stats.published, 3);
      assert.equal(stats.delivered, 7);
      assert.equal(stats.shared, 7);
    }),
  );

  test(
    "one frame's bytes go to every subscriber, not one encoding each",
    bounded(async () => {
      const topics = new PubSub();
      const a = recorded();
      const b = recorded();
      topics.subscribe(a.server, "t");
      topics.subscribe(b.server, "t");
      // Over 16 KiB, a frame is written as it is (never joined or copied).
      const big = new Uint8Array(20_000).fill(7);
      await topics.publish("t", big);
      await sleep(10);
      const frameA = a.writes.find((w) => w.length === 20_000 + 4);
      const frameB = b.writes.find((w) => w.length === 20_000 + 4);
      assert.ok(frameA && frameB, "both got the frame");
      assert.equal(frameA, frameB, "the very same bytes");
      assert.deepEqual([...frameA.subarray(0, 4)], [0x82, 126, 0x4e, 0x20]);
    }),
  );

  test(
    "a connection with an extension agreed gets the message sent on its own",
    bounded(async () => {
      const topics = new PubSub();
      const plain = pair();
      const extended = pair({ extensions: true });
      topics.subscribe(plain.server, "t");
      topics.subscribe(extended.server, "t");
      await topics.publish("t", "hello");
      assert.deepEqual(await take(extended.client, 1), ["hello"]);
      assert.deepEqual(await take(plain.client, 1), ["hello"]);
      assert.equal(topics.stats.shared, 1);
      assert.equal(topics.stats.delivered, 2);
    }),
  );

  test(
    "keeps its place among the connection's own sends",
    bounded(async () => {
      const topics = new PubSub();
      const { server, client } = pair();
      topics.subscribe(server, "t");
      // A streamed message holds the send queue: the published one waits.
      const streamed = server.send(ReadableStream.from(["a", "b"]));
      const published = topics.publish("t", "2");
      const after = server.send("3");
      await Promise.all([streamed, published, after]);
      assert.deepEqual(await take(client, 3), ["ab", "2", "3"]);
    }),
  );

  test(
    "a closed connection leaves its topics; unsubscribe leaves one",
    bounded(async () => {
      const topics = new PubSub();
      const one = pair();
      const two = pair();
      topics.subscribe(one.server, "a");
      topics.subscribe(one.server, "b/*");
      topics.subscribe(two.server, "a");
      topics.unsubscribe(two.server, "a");
      assert.equal(topics.subscriberCount("a"), 1);
      await Promise.all([one.client.close(), one.server.closed]);
      assert.equal(topics.subscriberCount("a"), 0);
      assert.equal(topics.subscriberCount("b/x"), 0);
      await topics.publish("a", "nobody");
      assert.equal(topics.stats.delivered, 0);
    }),
  );

  test("listeners hear every match, until stopped", async () => {
    const topics = new PubSub();
    const heard: [string, Message][] = [];
    const stop = topics.listen("x/*", (topic, m) => heard.push([topic, m]));
    await topics.publish("x/1", "a");
    await topics.publish("y/1", "b");
    stop();
    await topics.publish("x/2", "c");
    assert.deepEqual(heard, [["x/1", "a"]]);
  });
});

describe("PubSub slow subscribers", () => {
  /**
   * A subscriber whose peer reads nothing until told: its pipe fills, then
   * the connection's buffer.
   */
  function stalled(): { server: WebSocketConnection; peer: RawPeer } {
    const [a, b] = pipe({ highWaterMark: 1024 });
    const server = takeover(a, { role: "server", keepalive: false });
    const peer = new RawPeer(b, "client");
    cleanups.push(() => peer.drop());
    return { server, peer };
  }
  const chunk = "x".repeat(4096);

  test(
    "skip: the slow one misses messages, counted and reported",
    bounded(async () => {
      const drops: DropEvent[] = [];
      const topics = new PubSub({ onDrop: (d) => drops.push(d) });
      topics.setPolicy("feed", { slow: "skip", maxBufferedAmount: 16 * 1024 });
      const fast = pair();
      const slow = stalled();
      topics.subscribe(fast.server, "feed");
      topics.subscribe(slow.server, "feed");
      const reading = take(fast.client, 40);
      for (let i = 0; i < 40; i++) {
        await topics.publish("feed", chunk);
        await sleep(0);
      }
      assert.equal((await reading).length, 40, "the fast one got them all");
      const { skipped } = topics.stats;
      assert.ok(skipped > 0, "some were skipped");
      assert.equal(drops.length, skipped);
      assert.ok(drops.every((d) => d.action === "skipped"));
      assert.ok(drops.every((d) => d.connection === slow.server));
      assert.equal(slow.server.state, "open");
    }),
  );

  test(
    "close: the slow one is closed with 1013, others go on",
    bounded(async () => {
      const drops: DropEvent[] = [];
      const topics = new PubSub({
        slow: "close",
        maxBufferedAmount: 16 * 1024,
        onDrop: (d) => drops.push(d),
      });
      const fast = pair();
      const slow = stalled();
      topics.subscribe(fast.server, "feed");
      topics.subscribe(slow.server, "feed");
      const reading = take(fast.client, 40);
      for (let i = 0; i < 40; i++) {
        await topics.publish("feed", chunk);
        await sleep(0);
      }
      assert.equal((await reading).length, 40);
      assert.equal(topics.stats.closed, 1);
      assert.equal(drops.length, 1);
      assert.equal(drops[0]!.action, "closed");
      assert.notEqual(slow.server.state, "open");
      assert.equal(drops[0]!.connection, slow.server);
      // Its close frame, behind the data queued before it, says 1013.
      let frame = await slow.peer.expect();
      while (frame.opcode !== Opcode.Close) frame = await slow.peer.expect();
      assert.equal(closeOf(frame).code, 1013);
      await slow.peer.sendClose(1013);
      assert.equal((await within(3000, slow.server.closed)).closeCode, 1013);
    }),
  );

  test(
    "wait: publish waits for the slow one to drain",
    bounded(async () => {
      const topics = new PubSub({ maxBufferedAmount: 16 * 1024 });
      const slow = stalled();
      topics.subscribe(slow.server, "feed");
      let done = false;
      const publishing = (async () => {
        for (let i = 0; i < 40; i++) await topics.publish("feed", chunk);
        done = true;
      })();
      await sleep(100);
      assert.equal(done, false, "the publisher is held back");
      assert.equal(topics.stats.skipped, 0);
      for (let i = 0; i < 40; i++) { // now it reads
        assert.equal((await slow.peer.expect()).payload.length, chunk.length);
      }
      await publishing;
      assert.equal(done, true);
    }),
  );
});

describe("PubSub over sockets", () => {
  test(
    "a room on a server: every member gets each message, in order",
    bounded(async () => {
      const topics = new PubSub();
      const server = await serve(
        { hostname: "127.0.0.1", port: 0, keepalive: false },
        async (connection) => {
          topics.subscribe(connection, "room");
          for await (const message of connection) {
            await topics.publish("room", message);
          }
        },
      );
      cleanups.push(() => server.close());
      const url = `ws://127.0.0.1:${server.addr.port}`;
      const clients = await Promise.all([connect(url), connect(url)]);
      for (const c of clients) cleanups.push(() => c.close());
      while (topics.subscriberCount("room") < 2) await sleep(5);
      const sent = Array.from({ length: 50 }, (_, i) => `m${i}`);
      for (const m of sent) await clients[0]!.send(m);
      for (const c of clients) assert.deepEqual(await take(c, 50), sent);
    }),
  );
});

describe("PubSub listeners", () => {
  test("one that throws: the others still get it, publish rejects", async () => {
    const topics = new PubSub();
    const heard: string[] = [];
    topics.listen("t", () => {
      throw new Error("listener bug");
    });
    topics.listen("t", (_t, m) => heard.push(String(m)));
    await assert.rejects(topics.publish("t", "x"), /listener bug/);
    assert.deepEqual(heard, ["x"]);
  });
});
