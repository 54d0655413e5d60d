/**
 * Bounded memory, shown: backpressure holds both ways over real sockets, and
 * idle connections cost little.
 *
 *     deno test -A tests/reliability/memory_test.ts
 *     bun test ./tests/reliability/memory_test.ts
 *     WSSTREAM_IDLE_CONNECTIONS=10000 deno test -A tests/reliability/memory_test.ts
 *
 * - A raw peer floods 64 KiB messages at a connection whose application
 *   stops reading: the connection stops reading the socket once its queue
 *   is full, TCP flow control blocks the flooder, and memory stays flat.
 *   When the application reads again, the flood moves again.
 * - The application sends 64 KiB messages in a loop (awaiting `send()`, or
 *   `writable`'s writes) to a raw peer that never reads: once the socket
 *   buffers are full the promises stop resolving, the connection holds no
 *   more than a few messages, and memory stays flat. When the peer reads,
 *   the sends resolve again.
 * - Idle connections on one server, with the server and the clients in
 *   child processes of their own so each side's memory is its own: the
 *   growth per connection is printed and bounded. 1,000 by default (within
 *   the file limit, 20,000 here); `WSSTREAM_IDLE_CONNECTIONS` sets another
 *   count (10,000 in the README's figures).
 *
 * The bounds are stated in each test's name and are generous (several times
 * what was measured; see `tests/soak/README.md`), so the tests do not flake
 * on a loaded 2-core machine but still fail on unbounded buffering, which
 * would reach them within a fraction of a second.
 */
import { afterEach, describe } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { connect } from "../../src/client.ts";
import type { WebSocketConnection } from "../../src/connection.ts";
import { runtimeName } from "../../src/runtime.ts";
import { serve } from "../../src/server.ts";
import { within } from "../_wait.ts";
import { runScript } from "./_child.ts";
import {
  MemorySampler,
  mib,
  waitForProgress,
  waitForStall,
} from "./_memory.ts";
import {
  binaryFrame,
  Flooder,
  rawClient,
  type RawEnd,
  rawServer,
} from "./_raw_peer.ts";
import { slowTest } from "./_slow.ts";

const HOST = "127.0.0.1";
const KiB = 1024;
const MiB = 1024 * KiB;
/** The size of every message in the backpressure tests. */
const MESSAGE = 64 * KiB;
/** The connection's default `highWaterMark`: messages queued for the reader. */
const HIGH_WATER_MARK = 16;
/**
 * The most the connection may read past a stalled reader: its queue
 * (16 messages of 64 KiB = 1 MiB) and one socket read, doubled.
 */
const READ_BOUND = 2 * HIGH_WATER_MARK * MESSAGE;
/**
 * The most a blocked peer may get into the socket: the kernel's buffers on
 * both ends (on Linux up to `net.ipv4.tcp_rmem` max + `tcp_wmem` max, 32 +
 * 4 MiB here; about 4 to 8 MiB is what loopback really takes) and the
 * connection's share.
 */
const SOCKET_BOUND = 64 * MiB;
/** The most the process's resident memory may grow in a backpressure test. */
const RSS_BOUND = 48 * MiB;
/** The most the JavaScript heap may grow in a backpressure test. */
const HEAP_BOUND = 32 * MiB;
/** How long a flow must make no progress to count as blocked. */
const QUIET_MS = 500;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await Promise.resolve(cleanup()).catch(() => {});
  }
});

/**
 * Our connection (`role`) and a raw peer over a real socket. Cleanup drops
 * the peer and cancels the connection's `readable`: a connection whose
 * application stopped reading notices nothing of its peer otherwise.
 */
async function withRawPeer(
  role: "server" | "client",
): Promise<{ connection: WebSocketConnection; peer: RawEnd }> {
  let connection: WebSocketConnection;
  let peer: RawEnd;
  if (role === "server") {
    const accepted = Promise.withResolvers<WebSocketConnection>();
    const server = await serve(
      { hostname: HOST, port: 0, closeTimeout: 1_000 },
      (c) => accepted.resolve(c),
    );
    cleanups.push(() => server.close());
    peer = await rawClient(server.addr.port);
    connection = await within(5_000, accepted.promise);
  } else {
    const server = await rawServer();
    cleanups.push(() => server.close());
    connection = await connect(`ws://${HOST}:${server.port}/`, {
      closeTimeout: 1_000,
    });
    peer = await within(5_000, server.accepted);
  }
  cleanups.push(async () => {
    peer.transport.close();
    await connection.readable.cancel().catch(() => {});
    await within(5_000, connection.closed);
  });
  return { connection, peer };
}

function assertUnder(value: number, bound: number, what: string): void {
  assert.ok(value <= bound, `${what}: ${mib(value)}, over ${mib(bound)}`);
}

describe(`bounded memory (${runtimeName()})`, () => {
  for (const role of ["server", "client"] as const) {
    slowTest(
      `${role}: a peer flooding 64 KiB messages at a reader that stalls is blocked; the connection reads under 2 MiB, the peer gets under 64 MiB into the socket, RSS grows under 48 MiB`,
      20_000,
      async () => {
        const { connection, peer } = await withRawPeer(role);
        const sampler = new MemorySampler();
        cleanups.push(() => sampler.stop());
        sampler.start();
        const flooder = new Flooder(peer, binaryFrame(peer, MESSAGE));
        cleanups.push(() => flooder.stop());
        const blockedAt = await waitForStall(() => flooder.bytes, {
          quietMs: QUIET_MS,
          maxMs: 15_000,
          what: "the flood",
        });
        sampler.stop();
        const read = connection.info.bytesReceived;
        console.log(
          `  ${role}: flooder blocked after ${
            mib(blockedAt)
          }; connection read ${mib(read)}; RSS +${
            mib(sampler.growth.rss)
          }, heap +${mib(sampler.growth.heapUsed)}`,
        );
        assertUnder(read, READ_BOUND, "read by the connection");
        assertUnder(blockedAt, SOCKET_BOUND, "taken by the socket");
        assertUnder(sampler.growth.rss, RSS_BOUND, "RSS growth");
        assertUnder(sampler.growth.heapUsed, HEAP_BOUND, "heap growth");

        // Backpressure, not a dead connection: reading moves the flood on.
        const reader = connection.readable.getReader();
        for (let i = 0; i < 4 * HIGH_WATER_MARK; i++) {
          const { value } = await within(5_000, reader.read());
          assert.ok(value instanceof Uint8Array);
          assert.equal(value.length, MESSAGE);
          assert.equal(value[MESSAGE - 1], 0x5a);
        }
        reader.releaseLock();
        await waitForProgress(() => flooder.bytes, blockedAt, {
          maxMs: 5_000,
          what: "the flood, once read,",
        });
      },
    );
  }

  for (const role of ["server", "client"] as const) {
    for (const way of ["send", "writable"] as const) {
      slowTest(
        `${role}: ${way} in a loop against a peer that never reads stops resolving; the connection holds at most 4 messages, the socket takes under 64 MiB, RSS grows under 48 MiB`,
        20_000,
        async () => {
          const { connection, peer } = await withRawPeer(role);
          const payload = new Uint8Array(MESSAGE).fill(0xa5);
          const writer = connection.writable.getWriter();
          const sampler = new MemorySampler();
          cleanups.push(() => sampler.stop());
          sampler.start();
          let resolved = 0;
          let stopped = false;
          const writing = (async () => {
            while (!stopped) {
              if (way === "send") await connection.send(payload);
              else await writer.write(payload);
              resolved += payload.length;
            }
          })();
          writing.catch(() => {}); // ends with the connection, at cleanup
          cleanups.push(() => (stopped = true));
          const blockedAt = await waitForStall(() => resolved, {
            quietMs: QUIET_MS,
            maxMs: 15_000,
            what: `${way}()`,
          });
          sampler.stop();
          const held = connection.info.bytesSent - blockedAt;
          console.log(
            `  ${role} ${way}: blocked after ${mib(blockedAt)}; ${
              mib(held)
            } held by the connection; RSS +${mib(sampler.growth.rss)}, heap +${
              mib(sampler.growth.heapUsed)
            }`,
          );
          // Each message is 64 KiB of payload and a 10- or 14-byte header.
          assertUnder(held, 4 * (MESSAGE + 14), "held by the connection");
          assertUnder(blockedAt, SOCKET_BOUND, "taken by the socket");
          assertUnder(sampler.growth.rss, RSS_BOUND, "RSS growth");
          assertUnder(sampler.growth.heapUsed, HEAP_BOUND, "heap growth");

          // Backpressure, not a dead connection: once the peer reads, the
          // sends resolve again.
          const draining = (async () => {
            while (!(await peer.reader.read()).done) { /* discard */ }
          })();
          draining.catch(() => {}); // ends when the peer is dropped
          await waitForProgress(() => resolved, blockedAt + 16 * MESSAGE, {
            maxMs: 5_000,
            what: `${way}(), once the peer reads,`,
          });
        },
      );
    }
  }

  const idle = Number(process.env.WSSTREAM_IDLE_CONNECTIONS ?? 1_000);
  slowTest(
    `${
      idle.toLocaleString("en")
    } idle connections on one server cost under 200 KiB of RSS and 64 KiB of heap each (server and clients in child processes)`,
    Math.max(30_000, idle * 15),
    async () => {
      const script = new URL("./_idle_connections.ts", import.meta.url);
      const server = runScript(script, ["server", String(idle)]);
      cleanups.push(() => server.kill());
      const serverBase = parseMemory(await server.lines.next(10_000), 1);
      const port = /^listening (\d+)$/.exec(await server.lines.next(10_000))
        ?.[1];
      assert.ok(port, `no port: ${server.stderr()}`);
      const clients = runScript(script, ["clients", port, String(idle)]);
      cleanups.push(() => clients.kill());
      const clientBase = parseMemory(await clients.lines.next(10_000), 1);
      const wait = Math.max(20_000, idle * 10);
      const clientOpen = parseMemory(await clients.lines.next(wait), 2);
      const serverOpen = parseMemory(await server.lines.next(wait), 2);
      server.write("close\n");
      assert.equal(await server.lines.next(wait), "closed");
      assert.equal(await clients.lines.next(wait), `closed ${idle} clean`);
      assert.equal(await within(10_000, server.exited), 0, server.stderr());
      assert.equal(await within(10_000, clients.exited), 0, clients.stderr());

      const per = (open: number, base: number) => (open - base) / idle;
      const serverRss = per(serverOpen.rss, serverBase.rss);
      const serverHeap = per(serverOpen.heapUsed, serverBase.heapUsed);
      const clientRss = per(clientOpen.rss, clientBase.rss);
      const clientHeap = per(clientOpen.heapUsed, clientBase.heapUsed);
      const kib = (bytes: number) => `${(bytes / KiB).toFixed(1)} KiB`;
      console.log(
        `  ${idle} idle connections: server RSS +${
          mib(serverOpen.rss - serverBase.rss)
        } (${kib(serverRss)} each), heap ${kib(serverHeap)} each; ` +
          `clients RSS ${kib(clientRss)} each, heap ${kib(clientHeap)} each`,
      );
      assertUnder(serverRss, 200 * KiB, "server RSS per connection");
      assertUnder(serverHeap, 64 * KiB, "server heap per connection");
    },
  );
});

/** Reads `<label> [count] <rss> <heapUsed>` (`at`: where rss is). */
function parseMemory(
  line: string,
  at: number,
): { rss: number; heapUsed: number } {
  const fields = line.split(" ");
  const rss = Number(fields[at]);
  const heapUsed = Number(fields[at + 1]);
  assert.ok(
    Number.isFinite(rss) && Number.isFinite(heapUsed),
    `not a memory line: ${line}`,
  );
  return { rss, heapUsed };
}
