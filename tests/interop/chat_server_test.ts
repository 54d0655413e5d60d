/**
 * `examples/chat_server.ts`, run for real as a subprocess of the runtime
 * running this suite, driven by our client: rooms, ordering, refusals, the
 * page, shutdown; and two processes sharing rooms through a real
 * redis-server.
 *
 *     deno test -A tests/interop/chat_server_test.ts
 *     bun test ./tests/interop/chat_server_test.ts
 */
import assert from "node:assert/strict";
import {
  connect,
  HandshakeError,
  type WebSocketConnection,
} from "../../mod.ts";
import { REDIS_SKIP, startRedis } from "../_redis.ts";
import { chatEvents, startChat } from "./_chat.ts";
import { type Defer, interopTest, RUNTIME, within } from "./_harness.ts";
import { waitForExit } from "./_process.ts";

const chat = `${RUNTIME}: examples/chat_server.ts`;
const EXIT_TIMEOUT = 5_000;

async function join(
  defer: Defer,
  ws: string,
  room: string,
  name: string,
): Promise<WebSocketConnection> {
  const connection = await connect(
    `${ws}/rooms/${room}?name=${encodeURIComponent(name)}`,
  );
  defer(() => connection.close());
  return connection;
}

async function refusal(url: string, headers?: HeadersInit): Promise<number> {
  try {
    const connection = await connect(url, headers ? { headers } : {});
    await connection.close();
  } catch (error) {
    if (error instanceof HandshakeError) return error.status;
    throw error;
  }
  return 101;
}

interopTest(
  `${chat}: a room hears each message in order, the sender too; history on joining`,
  async (defer) => {
    const { ws } = await startChat(defer);
    const alice = await join(defer, ws, "lobby", "alice");
    const fromAlice = chatEvents(alice);
    const first = await fromAlice.next("alice's history");
    assert.deepEqual(first, {
      type: "history",
      room: "lobby",
      messages: [],
      present: [],
    });
    assert.deepEqual(await fromAlice.next("alice's own join"), {
      type: "join",
      room: "lobby",
      name: "alice",
    });
    const bob = await join(defer, ws, "lobby", "bob");
    const fromBob = chatEvents(bob);
    assert.deepEqual((await fromBob.next("bob's history")).present, ["alice"]);
    await fromAlice.nextOf("join", "bob's join, to alice");
    const other = await join(defer, ws, "kitchen", "carol");
    const fromOther = chatEvents(other);
    await fromOther.nextOf("join", "carol's own join");

    const texts = Array.from({ length: 30 }, (_, i) => `line ${i}`);
    for (const text of texts) await alice.send(text);
    await bob.send("bye");
    // Each hears all 31, each sender's in its order (no order between
    // senders), and both hear the same order.
    const heard: string[][] = [];
    for (const events of [fromAlice, fromBob]) {
      const got = [];
      for (let i = 0; i < 31; i++) {
        got.push(await events.nextOf("message", "31"));
      }
      assert.ok(got.every((m) => m.room === "lobby"));
      assert.deepEqual(
        got.filter((m) => m.from === "alice").map((m) => m.text),
        texts,
      );
      assert.deepEqual(
        got.filter((m) => m.from === "bob").map((m) => m.text),
        ["bye"],
      );
      heard.push(got.map((m) => m.text));
    }
    assert.deepEqual(heard[0], heard[1]);
    // Another room heard none of it.
    await other.send("here");
    const own = await fromOther.nextOf("message", "carol's own");
    assert.deepEqual([own.from, own.text], ["carol", "here"]);

    // A newcomer gets the room's history and who is present.
    const dave = await join(defer, ws, "lobby", "dave");
    const history = await chatEvents(dave).next("dave's history");
    assert.deepEqual(
      history.messages.map((m: { text: string }) => m.text),
      heard[0],
    );
    assert.deepEqual(history.present.sort(), ["alice", "bob"]);
  },
  40_000,
);

interopTest(
  `${chat}: 404 off /rooms/<room>, 403 for a foreign Origin, the page at GET /`,
  async (defer) => {
    const { ws, http } = await startChat(defer);
    assert.equal(await refusal(`${ws}/`), 404);
    assert.equal(await refusal(`${ws}/rooms/`), 404);
    assert.equal(await refusal(`${ws}/rooms/a/b`), 404);
    assert.equal(await refusal(`${ws}/other`), 404);
    // What the route's glob matches but names no room.
    assert.equal(await refusal(`${ws}/rooms/%E0%A4%A`), 404);
    assert.equal(await refusal(`${ws}/rooms/${"r".repeat(65)}`), 404);
    assert.equal(await refusal(`${ws}/rooms/caf%C3%A9`), 101);
    const host = http.slice("http://".length);
    assert.equal(
      await refusal(`${ws}/rooms/lobby`, { origin: "http://evil.example" }),
      403,
    );
    // The page's own origin, and no Origin at all (not a browser), may.
    assert.equal(
      await refusal(`${ws}/rooms/lobby`, { origin: `http://${host}` }),
      101,
    );
    assert.equal(await refusal(`${ws}/rooms/lobby`), 101);

    const page = await fetch(`${http}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /^text\/html/);
    const html = await page.text();
    for (const id of ["name", "room", "join", "input", "send"]) {
      assert.ok(html.includes(`data-testid="${id}"`), id);
    }
    assert.ok(!/\bsrc=|href=/.test(html), "no external assets");
    const missing = await fetch(`${http}/nothing`);
    await missing.body?.cancel();
    assert.equal(missing.status, 404);
  },
  40_000,
);

interopTest(
  `${chat}: ORIGINS globs decide which other pages may connect`,
  async (defer) => {
    // serve's origins: a glob with :// matches the whole origin, one
    // without the host[:port].
    const { ws } = await startChat(defer, {
      ORIGINS: "https://*.example.com, localhost:*",
    });
    const from = (origin: string) => refusal(`${ws}/rooms/lobby`, { origin });
    assert.equal(await from("https://chat.example.com"), 101);
    assert.equal(await from("http://chat.example.com"), 403);
    assert.equal(await from("http://localhost:3000"), 101);
    assert.equal(await from("https://localhost:8443"), 101);
    assert.equal(await from("https://example.org"), 403);
    // The page's own origin stays allowed: the page at GET / must connect.
    assert.equal(await from(`http://${ws.slice("ws://".length)}`), 101);
  },
  40_000,
);

interopTest(
  `${chat}: a binary message closes its sender with 1003; SIGTERM closes all with 1001 and exits 0`,
  async (defer) => {
    const { ws, child } = await startChat(defer);
    const mallory = await join(defer, ws, "lobby", "mallory");
    await mallory.send(new Uint8Array([1, 2, 3]));
    const info = await within(5_000, mallory.closed, "mallory's close");
    assert.equal(info.closeCode, 1003);

    const a = await join(defer, ws, "lobby", "a");
    const b = await join(defer, ws, "other", "b");
    await chatEvents(a).nextOf("join", "a's join");
    await chatEvents(b).nextOf("join", "b's join");
    child.kill("SIGTERM");
    for (const connection of [a, b]) {
      const closed = await within(EXIT_TIMEOUT, connection.closed, "closed");
      assert.equal(closed.closeCode, 1001);
      assert.equal(closed.wasClean, true);
    }
    assert.deepEqual(await waitForExit(child, EXIT_TIMEOUT), {
      code: 0,
      signal: null,
    });
  },
  40_000,
);

if (REDIS_SKIP) {
  console.log(`${chat} with Redis: ${REDIS_SKIP}`);
} else {
  interopTest(
    `${chat}: two processes on one Redis share the room, in order`,
    async (defer) => {
      const redis = await startRedis();
      defer(() => redis.stop());
      const env = { REDIS_URL: redis.url };
      const [one, two] = await Promise.all([
        startChat(defer, env),
        startChat(defer, env),
      ]);
      const alice = await join(defer, one.ws, "lobby", "alice");
      const bob = await join(defer, two.ws, "lobby", "bob");
      const fromAlice = chatEvents(alice);
      const fromBob = chatEvents(bob);
      await fromAlice.nextOf("join", "alice's join");
      await fromBob.nextOf("join", "bob's join");
      // Bob's join reached alice's process through Redis.
      const seen = await fromAlice.nextOf("join", "bob's join, via Redis");
      assert.equal(seen.name, "bob");

      const texts = Array.from({ length: 50 }, (_, i) => `from one ${i}`);
      for (const text of texts) await alice.send(text);
      await bob.send("from two");
      // Everyone hears all of it, each process's messages in its order.
      const heard: string[][] = [];
      for (const events of [fromAlice, fromBob]) {
        const got = [];
        for (let i = 0; i < 51; i++) {
          got.push(await events.nextOf("message", "51 messages"));
        }
        assert.deepEqual(
          got.filter((m) => m.from === "alice").map((m) => m.text),
          texts,
        );
        assert.deepEqual(
          got.filter((m) => m.from === "bob").map((m) => m.text),
          ["from two"],
        );
        heard.push(got.map((m) => m.text));
      }
      // A newcomer on the second process gets the history from both.
      const carol = await join(defer, two.ws, "lobby", "carol");
      const history = await chatEvents(carol).next("carol's history");
      // The last 50, in the order bob's process saw them.
      assert.deepEqual(
        history.messages.map((m: { text: string }) => m.text),
        heard[1]!.slice(-50),
      );
      assert.deepEqual(history.present.sort(), ["alice", "bob"]);
    },
    40_000,
  );
}
