/**
 * One suite for the transport of whichever runtime runs it, over real
 * sockets on 127.0.0.1:
 *
 *     deno test -A tests/transports_test.ts
 *     bun test ./tests/transports_test.ts
 *
 * `deno task test` runs it with Deno's sanitizers on (tests/_node_test_on_deno.ts);
 * for a plain `deno test` or `bun test`, and in any case,
 * every test closes all it opened (see `own`), and each is bounded in time.
 */
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { currentRuntime, runtimeName } from "../src/runtime.ts";
import type {
  ClientTlsOptions,
  Listener,
  Transport,
} from "../src/transport.ts";
import type { ByteChannel, ChannelReader } from "../src/byte_channel.ts";
import { cert, key } from "./_certs.ts";
import { bounded, sleep, within } from "./_wait.ts";

/** A test body bounded in time: 20 s, for the 64 MiB backpressure runs. */
const boundedFor = (body: () => Promise<void>, ms = 20_000) =>
  bounded(body, ms);

const rt = currentRuntime();
const HOST = "127.0.0.1";
const KiB = 1024;
const MiB = 1024 * KiB;
const TRUSTED: ClientTlsOptions = { caCerts: [cert], serverName: "localhost" };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Everything a test opens, closed after it even when an assertion failed.
const opened = new Set<{ close(): void }>();
function own<T extends { close(): void }>(thing: T): T {
  opened.add(thing);
  return thing;
}

/** Listens on a free port; accepted transports queue up for `next()`. */
async function serve(
  handle: (transport: Transport) => void = () => {},
  tls = false,
): Promise<{ listener: Listener; port: number; next(): Promise<Transport> }> {
  const queue: Transport[] = [];
  const waiting: ((transport: Transport) => void)[] = [];
  const listener = own(
    await rt.listen({
      hostname: HOST,
      port: 0,
      ...(tls ? { tls: { cert, key } } : {}),
    }, (transport) => {
      own(transport);
      handle(transport);
      const waiter = waiting.shift();
      if (waiter) waiter(transport);
      else queue.push(transport);
    }),
  );
  const next = () => {
    const queued = queue.shift();
    if (queued) return Promise.resolve(queued);
    return within(5_000, new Promise<Transport>((r) => waiting.push(r)));
  };
  return { listener, port: listener.addr.port, next };
}

async function connect(port: number, tls?: ClientTlsOptions) {
  return own(await rt.connect({ hostname: HOST, port, tls }));
}

function echo(transport: Transport): void {
  transport.readable.pipeTo(transport.writable).catch(() => {});
}

/** The byte at `offset` of a long test stream: a 64 KiB block number mixed
 * in, so a lost, repeated or reordered block shows. */
const patternByte = (at: number) => (at * 7 + (at >>> 16) * 13) & 255;

function pattern(offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = patternByte(offset + i);
  return bytes;
}

/** Reads to the end, checking every byte against `pattern`; returns the
 * count. */
async function readPattern(readable: ReadableStream<Uint8Array>) {
  let offset = 0;
  for await (const chunk of readable) {
    for (let i = 0; i < chunk.byteLength; i++) {
      if (chunk[i] !== patternByte(offset + i)) {
        assert.fail(`byte ${offset + i} is ${chunk[i]}, not the one sent`);
      }
    }
    offset += chunk.byteLength;
  }
  return offset;
}

/** Reads text to the end, or until `length` characters came. */
async function readText(readable: ReadableStream<Uint8Array>, length = -1) {
  let text = "";
  const reader = readable.getReader();
  while (text.length !== length) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

/** Reads until the stream ends or fails; true when it ended cleanly. */
async function drain(readable: ReadableStream<Uint8Array>): Promise<boolean> {
  try {
    for await (const _ of readable) { /* discard */ }
    return true;
  } catch {
    return false;
  }
}

async function writeText(writable: WritableStream<Uint8Array>, text: string) {
  const writer = writable.getWriter();
  await writer.write(encoder.encode(text));
  writer.releaseLock();
}

/** Sends 1 MiB in uneven chunks, half-closes, and expects it all back. */
async function echoMegabyte(client: Transport) {
  const sizes = [1, 7, 4096, 65535, 65536, 65537, 262144];
  sizes.push(MiB - sizes.reduce((a, b) => a + b));
  const reading = readPattern(client.readable);
  const writer = client.writable.getWriter();
  let offset = 0;
  for (const size of sizes) {
    await writer.write(pattern(offset, size));
    offset += size;
  }
  await writer.close();
  assert.equal(await reading, MiB);
}

/** Writes 64 MiB while the reader stalls: the writer must stop well short
 * of it (kernel buffers + one chunk + the high-water mark), then everything
 * must arrive intact once the reader reads. */
async function stallThenDrain(sender: Transport, receiver: Transport) {
  const total = 64 * MiB;
  const chunk = 64 * KiB;
  let accepted = 0;
  const writer = sender.writable.getWriter();
  const producing = (async () => {
    for (let offset = 0; offset < total; offset += chunk) {
      await writer.ready;
      writer.write(pattern(offset, chunk)).catch(() => {});
      accepted += chunk;
    }
    await writer.close();
  })();
  // Stalled: no progress for half a second.
  let last = -1;
  for (let still = 0, polls = 0; still < 5 && polls < 100; polls++) {
    await sleep(100);
    still = accepted === last ? still + 1 : 0;
    last = accepted;
  }
  assert.ok(accepted > 0, "nothing was written at all");
  assert.ok(
    accepted < 16 * MiB,
    `${accepted / MiB} MiB taken by the writer while nothing was read`,
  );
  assert.equal(await readPattern(receiver.readable), total);
  await producing;
}

describe(`${runtimeName()} transport (${rt.name})`, () => {
  afterEach(async () => {
    for (const thing of opened) thing.close();
    opened.clear();
    await sleep(10); // let close callbacks and cancelled ops settle
  });

  test("currentRuntime() picks the transport of this runtime", () => {
    assert.equal(rt.name, runtimeName());
    assert.equal(currentRuntime(), rt);
  });

  test(
    "TCP echo round trip: 1 MiB in several chunks, byte-exact",
    boundedFor(async () => {
      const { port } = await serve(echo);
      await echoMegabyte(await connect(port));
    }),
  );

  test(
    "TLS echo round trip with the fixture certificate trusted by caCerts",
    boundedFor(async () => {
      const { port } = await serve(echo, true);
      await echoMegabyte(await connect(port, TRUSTED));
    }),
  );

  test(
    "TLS without serverName checks the IP address against the certificate",
    boundedFor(async () => {
      const { port } = await serve(echo, true);
      const client = await connect(port, { caCerts: [cert] });
      await writeText(client.writable, "by IP");
      await client.writable.close();
      assert.equal(await readText(client.readable), "by IP");
    }),
  );

  test(
    "TLS connect rejects a certificate that is not trusted",
    boundedFor(async () => {
      const { port } = await serve(() => {}, true);
      await assert.rejects(connect(port, { serverName: "localhost" }));
      await assert.rejects(
        connect(port, { caCerts: [cert], serverName: "example.com" }),
      );
    }),
  );

  test(
    "addresses: the listener's real port, and both ends' addresses agree",
    boundedFor(async () => {
      const { listener, port, next } = await serve();
      assert.notEqual(port, 0);
      assert.deepEqual(listener.addr, { hostname: HOST, port });
      const client = await connect(port);
      const server = await next();
      assert.deepEqual(client.remoteAddr, { hostname: HOST, port });
      assert.deepEqual(server.localAddr, { hostname: HOST, port });
      assert.equal(client.localAddr?.hostname, HOST);
      assert.notEqual(client.localAddr?.port, 0);
      assert.deepEqual(server.remoteAddr, client.localAddr);
    }),
  );

  test(
    "addresses asked for while open are kept once closed; on Bun, first asked for after, null",
    boundedFor(async () => {
      const { port, next } = await serve();
      // Asked for while open, on both ends: the same after both closed.
      const client = await connect(port);
      const server = await next();
      const seen = [client.localAddr, client.remoteAddr, server.localAddr];
      const peer = server.remoteAddr;
      assert.deepEqual(peer, seen[0]);
      // Each call gives a copy: changing one does not change the next.
      server.remoteAddr!.port = 1;
      assert.deepEqual(server.remoteAddr, peer);
      client.close();
      assert.equal(await readText(server.readable), ""); // the peer's end
      server.close();
      await sleep(20);
      assert.deepEqual(
        [client.localAddr, client.remoteAddr, server.localAddr],
        seen,
      );
      assert.deepEqual(server.remoteAddr, peer);
      // Never asked for until both closed: Bun's socket has forgotten them
      // (a null, never an address with holes); Deno's were read at accept.
      const other = await connect(port);
      const accepted = await next();
      other.close();
      assert.equal(await readText(accepted.readable), "");
      accepted.close();
      await sleep(20);
      for (const address of [accepted.localAddr, accepted.remoteAddr]) {
        if (runtimeName() === "bun") assert.equal(address, null);
        else assert.equal(address?.hostname, HOST);
      }
    }),
  );

  for (const tls of [false, true]) {
    test(
      `half-close over ${tls ? "TLS" : "TCP"}: the server sees the end, ` +
        "then still answers",
      boundedFor(async () => {
        const { port, next } = await serve(() => {}, tls);
        const client = await connect(port, tls ? TRUSTED : undefined);
        const server = await next();
        await writeText(client.writable, "ping");
        await client.writable.close();
        assert.equal(await readText(server.readable), "ping");
        await writeText(server.writable, "pong");
        await server.writable.close();
        assert.equal(await readText(client.readable), "pong");
      }),
    );
  }

  test(
    "close() twice does not throw; reads end and writes reject after it",
    boundedFor(async () => {
      const { listener, port, next } = await serve();
      const client = await connect(port);
      const server = await next();
      client.close();
      client.close();
      assert.equal(await drain(server.readable), true);
      server.close();
      server.close();
      listener.close();
      listener.close();
      assert.equal(await drain(client.readable), true);
      await assert.rejects(
        client.writable.getWriter().write(new Uint8Array(1)),
      );
    }),
  );

  test(
    "close() while a write waits on backpressure rejects that write",
    boundedFor(async () => {
      const { port, next } = await serve();
      await connect(port); // never reads
      const server = await next();
      const writer = server.writable.getWriter();
      let blocked: Promise<void> | undefined;
      for (let offset = 0; offset < 64 * MiB && !blocked; offset += MiB) {
        const write = writer.write(new Uint8Array(MiB));
        const done = await Promise.race([write.then(() => true), sleep(200)]);
        if (!done) blocked = write;
      }
      assert.ok(blocked, "no write ever blocked");
      server.close();
      await assert.rejects(within(5_000, blocked));
    }),
  );

  test(
    "listener close() stops accepting; an accepted connection still works",
    boundedFor(async () => {
      const { listener, port } = await serve(echo);
      const client = await connect(port);
      listener.close();
      try {
        // Refused, or at worst accepted by the kernel and then dropped.
        const late = await connect(port);
        await within(5_000, drain(late.readable));
      } catch { /* refused */ }
      await writeText(client.writable, "still here");
      assert.equal(await readText(client.readable, 10), "still here");
    }),
  );

  test(
    "onTransport throwing does not stop the listener",
    boundedFor(async () => {
      let calls = 0;
      const { port } = await serve((transport) => {
        if (++calls === 1) throw new Error("thrown on purpose by the test");
        echo(transport);
      });
      const first = await connect(port);
      await within(5_000, drain(first.readable)); // closed by the listener
      const second = await connect(port);
      await writeText(second.writable, "second");
      await second.writable.close();
      assert.equal(await readText(second.readable), "second");
      assert.equal(calls, 2);
    }),
  );

  test(
    "connect to a closed port rejects",
    boundedFor(async () => {
      const listener = await rt.listen({ hostname: HOST, port: 0 }, () => {});
      const port = listener.addr.port;
      listener.close();
      await assert.rejects(connect(port));
    }),
  );

  test(
    "connect with an already-aborted signal rejects with its reason",
    boundedFor(async () => {
      let accepted = 0;
      const { port } = await serve(() => accepted++);
      const reason = new Error("aborted by the test");
      const signal = AbortSignal.abort(reason);
      await assert.rejects(
        rt.connect({ hostname: HOST, port, signal }),
        (error) => error === reason,
      );
      await sleep(100);
      assert.equal(accepted, 0, "a socket was opened");
    }),
  );

  test(
    "connect aborted during the TLS handshake rejects and closes the socket",
    boundedFor(async () => {
      // A plain TCP server never answers the ClientHello.
      const { port, next } = await serve();
      const controller = new AbortController();
      const connecting = rt.connect({
        hostname: HOST,
        port,
        tls: TRUSTED,
        signal: controller.signal,
      });
      const server = await next();
      const reason = new Error("aborted by the test");
      controller.abort(reason);
      await assert.rejects(connecting, (error) => error === reason);
      // Per-runtime gap: Deno 2.9 keeps the TCP socket of a closed TlsConn
      // open until its handshake ends, here when the server closes it
      // (denoland/deno#14547 made closing wait for the handshake).
      if (rt.name !== "deno") {
        await within(5_000, drain(server.readable)); // the client went away
      }
    }),
  );

  test(
    "a client sending garbage to a TLS listener does not break it",
    boundedFor(async () => {
      const { port } = await serve(echo, true);
      const raw = await connect(port);
      await writeText(raw.writable, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await within(5_000, drain(raw.readable)); // refused by the server
      raw.close();
      await echoMegabyte(await connect(port, TRUSTED));
    }),
  );

  test(
    "cancelling readable stops reading but keeps writable usable",
    boundedFor(async () => {
      const { port, next } = await serve();
      const client = await connect(port);
      const server = await next();
      await client.readable.cancel();
      await writeText(client.writable, "after cancel");
      await client.writable.close();
      assert.equal(await readText(server.readable), "after cancel");
    }),
  );

  for (const tls of [false, true]) {
    const over = tls ? "TLS" : "TCP";
    test(
      `backpressure over ${over}: the accepting end's writes stall while ` +
        "the client does not read",
      boundedFor(async () => {
        const { port, next } = await serve(() => {}, tls);
        const client = await connect(port, tls ? TRUSTED : undefined);
        await stallThenDrain(await next(), client);
      }, 60_000),
    );

    test(
      `backpressure over ${over}: the accepting end stops reading while ` +
        "its reader stalls",
      boundedFor(async () => {
        const { port, next } = await serve(() => {}, tls);
        const client = await connect(port, tls ? TRUSTED : undefined);
        await stallThenDrain(client, await next());
      }, 60_000),
    );
  }

  // The channel: what the handshake and the connection use, without streams.
  describe("channel", () => {
    /** Reads from a channel until `size` bytes came, or the end. */
    async function readBytes(channel: ByteChannel, size: number) {
      const parts: Uint8Array[] = [];
      let got = 0;
      while (got < size) {
        const bytes = await within(5_000, channel.read());
        if (bytes === null) break;
        parts.push(bytes);
        got += bytes.length;
      }
      const all = new Uint8Array(got);
      for (let at = 0, i = 0; i < parts.length; at += parts[i]!.length, i++) {
        all.set(parts[i]!, at);
      }
      return all;
    }

    test(
      "the runtime's transports have one, and their streams are made only when asked for",
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = await connect(port);
        const server = await next();
        assert.ok(client.channel && server.channel);
        assert.deepEqual(client.channel.remoteAddr, server.channel.localAddr);
        assert.deepEqual(client.channel.localAddr, server.channel.remoteAddr);
        client.channel.write(encoder.encode("channel to channel"));
        assert.equal(
          decoder.decode(await readBytes(server.channel, 18)),
          "channel to channel",
        );
      }),
    );

    test(
      "1 MiB written at once: bufferedAmount counts it down to 0 at drained()",
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = (await connect(port)).channel!;
        const server = (await next()).channel!;
        const sent = new Uint8Array(MiB).map((_, i) => patternByte(i));
        client.write(sent.subarray(0, MiB / 2));
        client.write(sent.subarray(MiB / 2));
        const [received] = await Promise.all([
          readBytes(server, MiB),
          within(5_000, client.drained()),
        ]);
        assert.equal(client.bufferedAmount, 0);
        assert.deepEqual(received, sent);
      }),
    );

    test(
      "readTo reads into the reader's own buffer where the runtime can (Deno), and the bytes arrive intact either way",
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = (await connect(port)).channel!;
        const server = (await next()).channel!;
        const sent = new Uint8Array(MiB).map((_, i) => patternByte(i));
        client.write(sent);
        const into = new Uint8Array(MiB);
        let at = 0, inPlace = 0;
        while (at < MiB) {
          const bytes = await within(
            5_000,
            new Promise<Uint8Array | null>((received, failed) =>
              server.readTo({
                received,
                failed,
                nextBuffer: () => into.subarray(at),
              })
            ),
          );
          assert.ok(bytes !== null && bytes.length > 0);
          if (bytes.buffer === into.buffer) {
            assert.equal(bytes.byteOffset, at, "read to the start of the view");
            inPlace++;
          } else into.set(bytes, at);
          at += bytes.length;
        }
        assert.deepEqual(into, sent);
        // Deno's reads go where they are asked to; Bun's hand over its own.
        if (rt.name === "deno") assert.ok(inPlace > 0);
        else assert.equal(inPlace, 0);
      }),
    );

    test(
      "closeWrite sends the queued bytes, then the end; the other way stays open",
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = (await connect(port)).channel!;
        const server = (await next()).channel!;
        client.write(encoder.encode("last words"));
        await within(5_000, client.closeWrite());
        assert.equal(decoder.decode(await readBytes(server, 64)), "last words");
        assert.equal(await within(5_000, server.read()), null);
        server.write(encoder.encode("still heard"));
        assert.equal(
          decoder.decode(await readBytes(client, 11)),
          "still heard",
        );
      }),
    );

    test(
      "close() ends a pending read with null and refuses writes with an error",
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = (await connect(port)).channel!;
        const server = (await next()).channel!;
        const pending = client.read();
        client.close();
        client.close(); // idempotent
        assert.equal(await within(5_000, pending), null);
        assert.equal(await client.read(), null);
        assert.throws(() => client.write(new Uint8Array(1)), /closed/);
        assert.equal(await within(5_000, server.read()), null); // the FIN
      }),
    );

    test(
      "readTo tells a reader (never before it returns) the bytes, then the end",
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = (await connect(port)).channel!;
        const server = (await next()).channel!;
        /** One readTo, as a promise, checking it was not told synchronously. */
        const readOnce = (channel: ByteChannel) => {
          const told = Promise.withResolvers<Uint8Array | null>();
          let returned = false;
          const reader: ChannelReader = {
            received: (bytes) => {
              assert.ok(returned, "told before readTo returned");
              told.resolve(bytes);
            },
            failed: told.reject,
          };
          channel.readTo(reader);
          returned = true;
          return within(5_000, told.promise);
        };
        client.write(encoder.encode("to a reader"));
        let text = "";
        while (text.length < 11) {
          text += decoder.decode((await readOnce(server))!);
        }
        assert.equal(text, "to a reader");
        client.write(encoder.encode("queued first"));
        await sleep(50); // arrives with no read pending: told from the queue
        assert.equal(decoder.decode((await readOnce(server))!), "queued first");
        client.close();
        assert.equal(await readOnce(server), null);
        assert.equal(await readOnce(server), null); // and again, at the end
      }),
    );

    test(
      "handedOff: true once the socket took every byte, false while any is queued and once closed",
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = (await connect(port)).channel!;
        const server = (await next()).channel!;
        assert.equal(client.handedOff, true, "nothing written yet");
        const block = new Uint8Array(MiB).map((_, i) => patternByte(i));
        // Blocks the peer does not read, until the kernel's buffers (and
        // Bun's own) are full and one stays queued.
        let sent = 0;
        while (client.bufferedAmount === 0 && sent < 64 * MiB) {
          client.write(block);
          sent += MiB;
        }
        assert.ok(client.bufferedAmount > 0);
        assert.equal(client.handedOff, false);
        const [received] = await Promise.all([
          readBytes(server, sent),
          within(5_000, client.drained()),
        ]);
        assert.equal(received.length, sent);
        assert.equal(client.handedOff, true);
        client.close();
        assert.equal(client.handedOff, false);
      }),
    );

    test(
      "Bun: whole reads of 64 KiB up are released once joined into a large message; a user's buffers never",
      { skip: runtimeName() !== "bun" && "Bun's transport only" },
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = await connect(port);
        const server = await next();
        const writer = client.writable.getWriter();
        const sent = pattern(0, 4 * MiB);
        void writer.write(sent);
        const reader = server.readable.getReader();
        const reads: Uint8Array[] = [];
        for (let got = 0; got < sent.length;) {
          const { value } = await reader.read();
          if (value === undefined) break;
          reads.push(value);
          got += value.length;
        }
        reader.releaseLock();
        const buffers = rt.payloadBuffers!;
        const lengths = reads.map((read) => read.length);
        const whole = reads.map((read) =>
          read.length >= 64 * KiB && read.byteOffset === 0 &&
          read.length === read.buffer.byteLength
        );
        assert.ok(whole.filter(Boolean).length >= 2, `reads: ${lengths}`);
        const joined = buffers.join(reads, sent.length);
        assert.deepEqual(joined, sent);
        // Released: every whole large read but the last, and nothing else.
        reads.forEach((read, i) => {
          const released = whole[i] && i < reads.length - 1;
          assert.equal(read.length, released ? 0 : lengths[i], `read ${i}`);
        });
        // The same join of a user's own whole buffers releases none.
        const mine = [pattern(0, 2 * MiB), pattern(2 * MiB, 2 * MiB)];
        assert.deepEqual(buffers.join(mine, 4 * MiB), sent);
        assert.deepEqual(mine.map((part) => part.length), [2 * MiB, 2 * MiB]);
      }),
    );

    test(
      "a runtime transport is its own channel",
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = await connect(port);
        await next();
        assert.equal(client.channel, client);
      }),
    );

    test(
      "writes to a peer that is gone fail the channel: later writes throw, drained() rejects",
      boundedFor(async () => {
        const { port, next } = await serve();
        const client = (await connect(port)).channel!;
        (await next()).close(); // the peer is gone: our bytes meet a reset
        let reported: unknown = null;
        client.tellWriteFailures({
          writeFailed: (error) => (reported = error),
        });
        // Until the kernel learns of the reset, writes still succeed; the
        // failure comes as a thrown write or as writeFailed, whichever the
        // runtime's timing gives first.
        const block = new Uint8Array(64 * KiB);
        let thrown: unknown = null;
        for (let i = 0; i < 400 && thrown === null && reported === null; i++) {
          try {
            client.write(block);
          } catch (error) {
            thrown = error;
          }
          await sleep(5);
        }
        assert.ok(thrown instanceof Error || reported instanceof Error);
        assert.throws(() => client.write(block));
        if (client.bufferedAmount > 0) await assert.rejects(client.drained());
      }),
    );
  });
});
