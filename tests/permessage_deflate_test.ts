/**
 * permessage-deflate (RFC 7692): the offer and answer rules on both ends,
 * the transforms (context takeover or not, window bits, threshold, BFINAL
 * blocks, empty messages and fragments), the decompression bomb, and the
 * extension on connections over an in-memory pipe with a raw peer.
 *
 *     deno task test tests/permessage_deflate_test.ts
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  permessageDeflate,
  type PermessageDeflateOptions,
  ZLIB_CONCURRENCY,
} from "../src/permessage_deflate.ts";
import {
  acceptExtensions,
  answerExtensions,
  type Extension,
  type ExtensionParams,
} from "../src/extension.ts";
import { HandshakeError, ProtocolError } from "../src/errors.ts";
import { takeover } from "../src/takeover.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { Opcode } from "../src/frame.ts";
import type { Role } from "../src/protocol.ts";
import { closeOf, pipe, RawPeer } from "./_pipe.ts";
import { equalBytes, prng, randomBytes } from "./_frames.ts";
import { bounded, sleep, within } from "./_wait.ts";

const encoder = new TextEncoder();
const TAIL = new Uint8Array([0, 0, 0xff, 0xff]);

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Compressible bytes: words from a small vocabulary, seeded. */
function compressible(size: number, seed = 1): Uint8Array {
  const random = prng(seed);
  const words = ["alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta "];
  let text = "";
  while (text.length < size) text += words[Math.floor(random() * 6)];
  return encoder.encode(text.slice(0, size));
}

/** Both ends agreed from one offer: the client's and the server's extension. */
function agree(
  client: PermessageDeflateOptions = {},
  server: PermessageDeflateOptions = {},
): { client: Extension; server: Extension; answer: ExtensionParams } {
  const ours = permessageDeflate({ threshold: 0, ...client });
  const theirs = permessageDeflate({ threshold: 0, ...server });
  const offer = ours.offers()[0]!;
  const answered = theirs.answer(offer);
  assert.ok(answered, "the server declined the offer");
  return {
    client: ours.accept(answered.params),
    server: answered,
    answer: answered.params,
  };
}

async function send(
  from: Extension,
  to: Extension,
  payload: Uint8Array,
  maxSize = 1 << 30,
): Promise<{ wire: Uint8Array; back: Uint8Array; rsv: number }> {
  const out = await from.encode({
    payload,
    text: false,
    first: true,
    fin: true,
    compress: undefined,
  });
  const back = out.rsv === 0
    ? out.payload
    : await to.decode(out.payload, maxSize);
  return { wire: out.payload, back, rsv: out.rsv };
}

describe("permessageDeflate: the client's offer and its check of the answer", () => {
  test("offers client_max_window_bits without a value by default", () => {
    assert.deepEqual(permessageDeflate().offers(), [
      { client_max_window_bits: true },
    ]);
    assert.deepEqual(
      permessageDeflate({
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
        serverMaxWindowBits: 10,
        clientMaxWindowBits: 12,
      }).offers(),
      [{
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: "10",
        client_max_window_bits: "12",
      }],
    );
  });

  test("accepts the answers RFC 7692 §7.1 allows", () => {
    const deflate = permessageDeflate();
    for (
      const params of [
        {},
        { server_no_context_takeover: true },
        { client_no_context_takeover: true },
        { server_max_window_bits: "8" },
        { server_max_window_bits: "15" },
        { client_max_window_bits: "8" },
        { client_max_window_bits: "15" },
      ] as ExtensionParams[]
    ) {
      const agreed = deflate.accept(params);
      assert.equal(agreed.name, "permessage-deflate");
      assert.equal(agreed.rsv, 4);
      assert.deepEqual(agreed.params, params);
      agreed.close();
    }
  });

  test("fails the handshake on an answer it cannot accept", () => {
    const cases: [PermessageDeflateOptions, ExtensionParams, RegExp][] = [
      [{}, { x_unknown: true }, /unknown parameter x_unknown/],
      [{}, { server_no_context_takeover: "1" }, /has a value/],
      [{}, { client_no_context_takeover: "x" }, /has a value/],
      [{}, { server_max_window_bits: true }, /invalid server_max_window_bits/],
      [{}, { server_max_window_bits: "7" }, /invalid/],
      [{}, { server_max_window_bits: "16" }, /invalid/],
      [{}, { server_max_window_bits: "08" }, /invalid/],
      [{}, { server_max_window_bits: "1e1" }, /invalid/],
      [{}, { client_max_window_bits: true }, /has no value/],
      [{}, { client_max_window_bits: "9a" }, /invalid/],
      [{ clientMaxWindowBits: 10 }, { client_max_window_bits: "11" }, /over/],
      [{ serverMaxWindowBits: 10 }, {}, /missing/],
      [{ serverMaxWindowBits: 10 }, { server_max_window_bits: "11" }, /over/],
      [{ serverNoContextTakeover: true }, {}, /missing/],
    ];
    for (const [options, params, message] of cases) {
      assert.throws(
        () => permessageDeflate(options).accept(params),
        (error: unknown) =>
          error instanceof HandshakeError && error.status === 0 &&
          message.test(error.message),
        JSON.stringify(params),
      );
    }
  });

  test("acceptExtensions refuses an extension accepted twice or not offered", () => {
    const deflate = permessageDeflate();
    assert.throws(
      () =>
        acceptExtensions([deflate], [
          { name: "permessage-deflate", params: {} },
          { name: "permessage-deflate", params: {} },
        ]),
      (error: unknown) =>
        error instanceof HandshakeError && /more than once/.test(error.message),
    );
    assert.throws(
      () => acceptExtensions([deflate], [{ name: "x-other", params: {} }]),
      (error: unknown) =>
        error instanceof HandshakeError && /did not offer/.test(error.message),
    );
  });

  test("rejects options out of range at the call", () => {
    assert.throws(
      () => permessageDeflate({ serverMaxWindowBits: 7 }),
      RangeError,
    );
    assert.throws(
      () => permessageDeflate({ clientMaxWindowBits: 16 }),
      RangeError,
    );
    assert.throws(() => permessageDeflate({ threshold: -1 }), RangeError);
    assert.throws(() => permessageDeflate({ level: 10 }), RangeError);
    assert.throws(() => permessageDeflate({ memLevel: 0 }), RangeError);
  });
});

describe("permessageDeflate: the server's answer", () => {
  const answer = (
    options: PermessageDeflateOptions,
    params: ExtensionParams,
  ) => {
    const agreed = permessageDeflate(options).answer(params);
    agreed?.close();
    return agreed === null ? null : agreed.params;
  };

  test("answers each parameter as RFC 7692 §7.1 says", () => {
    assert.deepEqual(answer({}, {}), {});
    assert.deepEqual(answer({}, { client_max_window_bits: true }), {});
    assert.deepEqual(
      answer({}, { client_max_window_bits: "12" }),
      { client_max_window_bits: "12" },
    );
    assert.deepEqual(
      answer({ clientMaxWindowBits: 10 }, { client_max_window_bits: true }),
      { client_max_window_bits: "10" },
    );
    assert.deepEqual(
      answer({ clientMaxWindowBits: 10 }, { client_max_window_bits: "9" }),
      { client_max_window_bits: "9" },
    );
    assert.deepEqual(
      answer({}, { server_max_window_bits: "10" }),
      { server_max_window_bits: "10" },
    );
    assert.deepEqual(
      answer({ serverMaxWindowBits: 9 }, { server_max_window_bits: "12" }),
      { server_max_window_bits: "9" },
    );
    assert.deepEqual(
      answer({ serverMaxWindowBits: 11 }, {}),
      { server_max_window_bits: "11" },
    );
    assert.deepEqual(
      answer({}, {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
      }),
      { server_no_context_takeover: true, client_no_context_takeover: true },
    );
    assert.deepEqual(
      answer(
        { serverNoContextTakeover: true, clientNoContextTakeover: true },
        {},
      ),
      { server_no_context_takeover: true, client_no_context_takeover: true },
    );
  });

  test("declines invalid or unknown parameters, and a limit the client cannot take", () => {
    for (
      const params of [
        { x_unknown: true },
        { server_max_window_bits: true },
        { server_max_window_bits: "16" },
        { server_max_window_bits: "07" },
        { client_max_window_bits: "7" },
        { server_no_context_takeover: "yes" },
      ] as ExtensionParams[]
    ) assert.equal(answer({}, params), null, JSON.stringify(params));
    // We would limit the client's window, and it did not say it can.
    assert.equal(answer({ clientMaxWindowBits: 10 }, {}), null);
  });

  test("answerExtensions takes the first offer it can accept", () => {
    const agreed = answerExtensions([permessageDeflate()], [
      { name: "permessage-deflate", params: { server_max_window_bits: "99" } },
      { name: "permessage-deflate", params: { client_max_window_bits: "10" } },
    ]);
    assert.equal(agreed.length, 1);
    assert.deepEqual(agreed[0]!.params, { client_max_window_bits: "10" });
    agreed[0]!.close();
    assert.deepEqual(
      answerExtensions([permessageDeflate()], [
        { name: "permessage-deflate", params: { nope: true } },
      ]),
      [],
    );
  });
});

// Autobahn's categories 12 and 13 at the extension level: many sizes, both
// directions, every parameter combination (13.x) and context takeover kept
// across a run of messages (12.x).
const COMBINATIONS: [
  string,
  PermessageDeflateOptions,
  PermessageDeflateOptions,
][] = [
  ["defaults", {}, {}],
  ["server_no_context_takeover", { serverNoContextTakeover: true }, {}],
  ["client_no_context_takeover", { clientNoContextTakeover: true }, {}],
  ["both no_context_takeover", {}, {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
  }],
  ["server_max_window_bits=8", { serverMaxWindowBits: 8 }, {}],
  ["server_max_window_bits=9", { serverMaxWindowBits: 9 }, {}],
  ["client_max_window_bits=8", {}, { clientMaxWindowBits: 8 }],
  ["client_max_window_bits=12", { clientMaxWindowBits: 12 }, {}],
  ["both windows 8, no takeover", {
    serverMaxWindowBits: 8,
    clientMaxWindowBits: 8,
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
  }, {}],
  ["both windows 15", { serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, {}],
];
const SIZES = [0, 1, 16, 64, 256, 1024, 4096, 32768, 131072];

describe("permessageDeflate: round trips (Autobahn 12/13 style)", () => {
  for (const [label, client, server] of COMBINATIONS) {
    test(`every size both ways, context kept across messages: ${label}`, async () => {
      const ends = agree(client, server);
      try {
        for (
          const [from, to] of [[ends.client, ends.server], [
            ends.server,
            ends.client,
          ]]
        ) {
          let seed = 1;
          // Twice over: the second pass reaches back into the first's window.
          for (const size of [...SIZES, ...SIZES]) {
            const payload = compressible(size, seed++ % 3);
            const { back, rsv, wire } = await send(from!, to!, payload);
            assert.equal(rsv, 4);
            assert.deepEqual(back, payload, `${size} bytes`);
            if (size >= 1024) {
              assert.ok(wire.length < size / 2, "not compressed");
            }
          }
          // Random bytes grow a little; they still round-trip.
          const noise = randomBytes(prng(7), 70_000);
          assert.deepEqual((await send(from!, to!, noise)).back, noise);
        }
      } finally {
        ends.client.close();
        ends.server.close();
      }
    });
  }

  test("without context takeover each message inflates on its own", async () => {
    const { client, server } = agree({}, {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
    });
    const payload = compressible(5000);
    for (const [from, to] of [[client, server], [server, client]]) {
      for (let i = 0; i < 3; i++) {
        const { wire } = await send(from!, to!, payload);
        // A fresh inflater, knowing nothing of the messages before.
        assert.deepEqual(
          new Uint8Array(
            zlib.inflateRawSync(concat(wire, TAIL), {
              finishFlush: zlib.constants.Z_SYNC_FLUSH,
            }),
          ),
          payload,
        );
      }
    }
    client.close();
    server.close();
  });

  test("with context takeover the second copy of a message is a back-reference", async () => {
    const { client, server } = agree();
    const payload = randomBytes(prng(3), 2000);
    const first = await send(server, client, payload);
    const second = await send(server, client, payload);
    assert.ok(second.wire.length < first.wire.length / 10);
    assert.deepEqual(second.back, payload);
    client.close();
    server.close();
  });

  test("a window of 8 bits is kept: what we send inflates with a 256-byte window", async () => {
    // zlib cannot deflate raw with windowBits 8; we use 9, whose farthest
    // match is 250 bytes back (MAX_DIST). A 256-byte inflater proves it.
    const { server, client } = agree({ serverMaxWindowBits: 8 }, {});
    const inflate = zlib.createInflateRaw({ windowBits: 8 });
    const out: Uint8Array[] = [];
    inflate.on("data", (chunk: Uint8Array) => out.push(chunk));
    let expected: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 20; i++) {
      // Repeats at every distance up to 600 bytes.
      const random = prng(i);
      const unit = randomBytes(random, 1 + Math.floor(random() * 600));
      const payload = concat(unit, unit, unit, compressible(3000, i));
      const { wire } = await send(server, client, payload);
      inflate.write(concat(wire, TAIL));
      expected = concat(expected, payload);
    }
    await new Promise<void>((resolve, reject) => {
      inflate.once("error", reject);
      inflate.flush(() => resolve());
    });
    assert.deepEqual(concat(...out), expected);
    inflate.close();
    server.close();
    client.close();
  });

  test("threshold and compress: false leave a message as it is", async () => {
    const ours = permessageDeflate({ threshold: 100 });
    const server = permessageDeflate().answer(ours.offers()[0]!)!;
    const client = ours.accept(server.params);
    const small = compressible(99);
    const smallOut = await client.encode({
      payload: small,
      text: true,
      first: true,
      fin: true,
      compress: undefined,
    });
    assert.deepEqual(smallOut, { payload: small, rsv: 0 });
    const big = compressible(100);
    assert.equal(
      (await client.encode({
        payload: big,
        text: true,
        first: true,
        fin: true,
        compress: undefined,
      })).rsv,
      4,
    );
    const skipped = compressible(5000);
    assert.deepEqual(
      await client.encode({
        payload: skipped,
        text: true,
        first: true,
        fin: true,
        compress: false,
      }),
      { payload: skipped, rsv: 0 },
    );
    client.close();
    server.close();
  });

  test("a message ending in a BFINAL block inflates, and so does the next (RFC 7692 §7.2.3.3)", async () => {
    const { server, client } = agree();
    // "Hello" in a final block, as a peer that flushes with Z_FINISH sends it.
    const final = new Uint8Array(zlib.deflateRawSync(encoder.encode("Hello")));
    assert.deepEqual(
      final,
      new Uint8Array([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
    );
    assert.deepEqual(
      await server.decode(final, 1 << 20),
      encoder.encode("Hello"),
    );
    // The peer's stream ended; its next message starts a new one.
    const next = new Uint8Array(zlib.deflateRawSync(encoder.encode("again")));
    assert.deepEqual(
      await server.decode(next, 1 << 20),
      encoder.encode("again"),
    );
    // The RFC's own example of a message with BFINAL and padding.
    assert.deepEqual(
      await server.decode(
        new Uint8Array([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]),
        1 << 20,
      ),
      encoder.encode("Hello"),
    );
    server.close();
    client.close();
  });

  test("an empty last fragment after sync-flushed ones still ends the message", async () => {
    const { server, client } = agree();
    const parts: Uint8Array[] = [];
    const chunks = [
      compressible(3000, 1),
      compressible(10, 2),
      new Uint8Array(0),
    ];
    for (const [i, chunk] of chunks.entries()) {
      const out = await client.encode({
        payload: chunk,
        text: false,
        first: i === 0,
        fin: i === chunks.length - 1,
        compress: undefined,
      });
      if (i === 0) assert.equal(out.rsv, 4);
      parts.push(out.payload);
    }
    assert.ok(parts[2]!.length > 0, "the last fragment must carry the ending");
    assert.deepEqual(
      await server.decode(concat(...parts), 1 << 20),
      concat(...chunks),
    );
    // An empty message after it, then a real one: the context still agrees.
    assert.deepEqual(
      (await send(client, server, new Uint8Array(0))).back,
      new Uint8Array(0),
    );
    assert.deepEqual(
      (await send(client, server, compressible(500))).back,
      compressible(500),
    );
    server.close();
    client.close();
  });

  test("closing while compressing or inflating fails the operation, never leaves it hanging", async () => {
    for (const side of ["encode", "decode"] as const) {
      const { server, client } = agree();
      const payload = randomBytes(prng(5), 4 << 20);
      const wire = side === "decode" ? await compress(client, payload) : null;
      const pending: Promise<Uint8Array> = side === "encode"
        ? compress(server, payload)
        : Promise.resolve(server.decode(wire!, 1 << 30));
      // Once zlib has started: the operation acquired its turn and wrote
      // to the stream a few microtasks in, and zlib calls back later.
      for (let i = 0; i < 3; i++) await Promise.resolve();
      server.close();
      await within(
        2_000,
        assert.rejects(pending, /closed with its connection/),
      );
      client.close();
    }
  });

  test("corrupt data fails with 1007", async () => {
    const { server, client } = agree();
    await assert.rejects(
      async () =>
        await server.decode(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 1 << 20),
      (error: unknown) =>
        error instanceof ProtocolError && error.closeCode === 1007,
    );
    server.close();
    client.close();
  });
});

/** A deflate stream of `gib` GiB of zeros in about a MiB: one block, repeated. */
function bomb(mib: number): Uint8Array {
  const block = new Uint8Array(
    zlib.deflateRawSync(new Uint8Array(1 << 20), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    }),
  );
  // Each block is whole and byte-aligned (it ends with a sync flush's empty
  // stored block) and refers to nothing before it, so copies chain.
  const out = new Uint8Array(block.length * mib);
  for (let i = 0; i < mib; i++) out.set(block, i * block.length);
  return out.subarray(0, out.length - 4);
}

describe("permessageDeflate: the cap on zlib work", () => {
  test(`failures give their turn back: more than ZLIB_CONCURRENCY bad messages, then good ones`, async () => {
    const pairs = Array.from({ length: ZLIB_CONCURRENCY * 3 }, () => agree());
    // All at once, every one failing: each must give its slot back.
    const bad = await Promise.allSettled(
      pairs.map(({ server }) =>
        server.decode(new Uint8Array([0xff, 0xff]), 1 << 20)
      ),
    );
    assert.ok(bad.every((result) => result.status === "rejected"));
    // Then as many again at once, all good: none may wait forever.
    const payload = compressible(20_000);
    const wires = await Promise.all(
      pairs.map(({ client }) => compress(client, payload)),
    );
    const backs = await within(
      5_000,
      Promise.all(
        pairs.map(({ server }, i) => server.decode(wires[i]!, 1 << 20)),
      ),
    );
    assert.ok(backs.every((back) => equalBytes(back, payload)));
    for (const { client, server } of pairs) {
      client.close();
      server.close();
    }
  });
});

describe("permessageDeflate: the decompression bomb", () => {
  test("a message inflating past the limit fails with 1009 while inflating", async () => {
    const { server, client } = agree();
    const payload = bomb(1024); // 1 GiB inflated
    assert.ok(payload.length < 2 << 20, `${payload.length} bytes compressed`);
    const before = process.memoryUsage().rss;
    const started = performance.now();
    await assert.rejects(
      async () => await server.decode(payload, 1 << 20),
      (error: unknown) =>
        error instanceof ProtocolError && error.closeCode === 1009 &&
        /1048576-byte limit once inflated/.test(error.message),
    );
    // Stopped early: nowhere near the time or memory a whole GiB takes.
    assert.ok(performance.now() - started < 2_000);
    assert.ok(process.memoryUsage().rss - before < 256 << 20);
    // Exactly the limit is fine.
    const exact = bomb(1);
    const fresh = agree();
    assert.equal((await fresh.server.decode(exact, 1 << 20)).length, 1 << 20);
    fresh.server.close();
    fresh.client.close();
    server.close();
    client.close();
  });
});

// ---- on connections, over a pipe ----

/** A connection in `role` with deflate agreed, and a raw peer whose ends we hold. */
function deflateConnection(
  role: Role,
  options: PermessageDeflateOptions = {},
  connection: { maxMessageSize?: number; highWaterMark?: number } = {},
): { conn: WebSocketConnection; peer: RawPeer; peerExt: Extension } {
  const ends = agree(options, options);
  const [a, b] = pipe();
  const conn = takeover(a, {
    role,
    keepalive: false,
    extensions: [role === "client" ? ends.client : ends.server],
    ...connection,
  });
  const peer = new RawPeer(b, role === "client" ? "server" : "client");
  return { conn, peer, peerExt: role === "client" ? ends.server : ends.client };
}

async function compress(
  ext: Extension,
  payload: Uint8Array,
): Promise<Uint8Array> {
  return (await ext.encode({
    payload,
    text: false,
    first: true,
    fin: true,
    compress: undefined,
  })).payload;
}

for (const role of ["client", "server"] as const) {
  describe(`permessage-deflate on a connection (${role})`, () => {
    test(
      "connection.extensions lists it and messages go out with RSV1",
      bounded(async () => {
        const { conn, peer, peerExt } = deflateConnection(role, {
          threshold: 10,
        });
        assert.deepEqual(conn.extensions.map((e) => e.name), [
          "permessage-deflate",
        ]);
        assert.equal(conn.info.extensions[0]!.name, "permessage-deflate");
        const text = "compress me ".repeat(100);
        await conn.send(text);
        await conn.send("tiny");
        await conn.send(compressible(2000), { compress: false });
        const first = await peer.expect();
        assert.equal(first.rsv, 4);
        assert.equal(first.opcode, Opcode.Text);
        assert.ok(first.payload.length < 100);
        assert.equal(
          new TextDecoder().decode(
            await peerExt.decode(first.payload, 1 << 20),
          ),
          text,
        );
        const tiny = await peer.expect();
        assert.deepEqual([tiny.rsv, new TextDecoder().decode(tiny.payload)], [
          0,
          "tiny",
        ]);
        const raw = await peer.expect();
        assert.deepEqual([raw.rsv, raw.payload], [0, compressible(2000)]);
        peer.drop();
        peerExt.close();
        await conn.closed;
      }),
    );

    test(
      "a fragmented compressed message with a ping between its frames",
      bounded(async () => {
        const { conn, peer, peerExt } = deflateConnection(role);
        const message = compressible(5000);
        const wire = await compress(peerExt, message);
        const cut = Math.floor(wire.length / 2);
        await peer.send(Opcode.Binary, wire.subarray(0, cut), {
          fin: false,
          rsv: 4,
        });
        await peer.send(Opcode.Ping, "p");
        await peer.send(Opcode.Continuation, wire.subarray(cut), { fin: true });
        // An uncompressed message right behind it keeps its place.
        await peer.send(Opcode.Text, "plain");
        const reader = conn[Symbol.asyncIterator]();
        assert.deepEqual((await reader.next()).value, message);
        assert.equal((await reader.next()).value, "plain");
        const pong = await peer.expect();
        assert.deepEqual([pong.opcode, pong.rsv], [Opcode.Pong, 0]);
        peer.drop();
        peerExt.close();
        await conn.closed;
      }),
    );

    test(
      "RSV1 on a continuation or a control frame fails with 1002",
      bounded(async () => {
        for (const bad of ["continuation", "ping"] as const) {
          const { conn, peer, peerExt } = deflateConnection(role);
          if (bad === "continuation") {
            await peer.send(Opcode.Text, "a", { fin: false });
            await peer.send(Opcode.Continuation, "b", { rsv: 4 });
          } else await peer.send(Opcode.Ping, "", { rsv: 4 });
          const close = await peer.expect();
          assert.equal(closeOf(close).code, 1002);
          peer.drop();
          peerExt.close();
          await conn.closed;
        }
      }),
    );

    test(
      "a bomb fails the connection with 1009",
      bounded(async () => {
        const { conn, peer, peerExt } = deflateConnection(role, {}, {
          maxMessageSize: 4 << 20,
        });
        const closed = conn.closed;
        void peer.send(Opcode.Binary, bomb(1024), { rsv: 4 }).catch(() => {});
        const reader = conn[Symbol.asyncIterator]();
        await assert.rejects(reader.next());
        let close = await peer.expect();
        while (close.opcode !== Opcode.Close) close = await peer.expect();
        assert.equal(closeOf(close).code, 1009);
        peer.drop();
        peerExt.close();
        assert.equal((await closed).closeCode, 1009);
      }, 10_000),
    );

    test(
      "compressed text that is not UTF-8 fails with 1007",
      bounded(async () => {
        const { conn, peer, peerExt } = deflateConnection(role);
        await peer.send(
          Opcode.Text,
          await compress(peerExt, new Uint8Array([0xc3, 0x28])),
          { rsv: 4 },
        );
        const reader = conn[Symbol.asyncIterator]();
        await assert.rejects(reader.next());
        const close = await peer.expect();
        assert.equal(closeOf(close).code, 1007);
        peer.drop();
        peerExt.close();
        await conn.closed;
      }),
    );

    test(
      "a message sent in fragments is compressed across them",
      bounded(async () => {
        const { conn, peer, peerExt } = deflateConnection(role);
        const chunks = [
          compressible(3000, 1),
          compressible(3000, 2),
          new Uint8Array(0),
        ];
        await conn.send(ReadableStream.from(chunks));
        const frames = [
          await peer.expect(),
          await peer.expect(),
          await peer.expect(),
        ];
        assert.deepEqual(frames.map((f) => [f.opcode, f.rsv, f.fin]), [
          [Opcode.Binary, 4, false],
          [Opcode.Continuation, 0, false],
          [Opcode.Continuation, 0, true],
        ]);
        assert.deepEqual(
          await peerExt.decode(
            concat(...frames.map((f) => f.payload)),
            1 << 20,
          ),
          concat(...chunks),
        );
        peer.drop();
        peerExt.close();
        await conn.closed;
      }),
    );

    test(
      "the peer's close waits for the messages before it",
      bounded(async () => {
        const { conn, peer, peerExt } = deflateConnection(role);
        const messages = [compressible(200_000, 1), compressible(100_000, 2)];
        for (const message of messages) {
          await peer.send(Opcode.Binary, await compress(peerExt, message), {
            rsv: 4,
          });
        }
        await peer.sendClose(1000);
        // The socket ends too (a client waits for that), right behind the
        // close frame: both messages must still come first.
        await peer.end();
        const got: unknown[] = [];
        for await (const message of conn) got.push(message);
        assert.equal(got.length, 2);
        assert.ok(
          got.every((message, i) =>
            equalBytes(message as Uint8Array, messages[i]!)
          ),
        );
        peer.drop();
        peerExt.close();
        assert.equal((await conn.closed).closeCode, 1000);
      }),
    );
  });
}

test(
  "a compressing flood against a reader that stops is held back",
  bounded(async () => {
    const ends = agree();
    const [a, b] = pipe({ highWaterMark: 16 * 1024 });
    const reader = takeover(a, {
      role: "server",
      keepalive: false,
      highWaterMark: 4,
      extensions: [ends.server],
    });
    const flooder = takeover(b, {
      role: "client",
      keepalive: false,
      extensions: [ends.client],
    });
    let sent = 0;
    const flood = (async () => {
      for (let i = 0; i < 5000; i++) {
        // Random: compresses to its own size, so the pipe fills.
        await flooder.send(randomBytes(prng(i), 16 * 1024));
        sent++;
      }
    })().catch(() => {});
    await sleep(300);
    const stalled = sent;
    await sleep(200);
    // Nobody reads: the reader holds its high-water mark, the pipe its
    // queues, and the flooder waits.
    assert.ok(sent < 100, `${sent} sent`);
    assert.equal(sent, stalled);
    assert.ok(
      reader.info.bytesReceived < 1 << 20,
      `${reader.info.bytesReceived} read`,
    );
    await within(3_000, Promise.all([reader.close(), flooder.closed]));
    await flood;
  }, 8_000),
);
