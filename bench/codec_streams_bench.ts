/**
 * What the stream codec costs next to the connection's channel path: the
 * time per 32-byte message echoed over an in-memory pipe, through a pair of
 * `MessageStreams` (src/codec_streams.ts) and through a pair of `takeover()`
 * connections (src/connection.ts), each used the way its docs show. The
 * figure quoted in src/codec_streams.ts's module doc comes from here. Not
 * part of the test suite; a plain script, so that both runtimes run it:
 *
 * ```sh
 * deno run -A bench/codec_streams_bench.ts
 * bun bench/codec_streams_bench.ts
 * ```
 *
 * @module
 */

import { MessageStreams } from "../src/codec_streams.ts";
import { takeover } from "../src/takeover.ts";

const MESSAGES = 20_000;
const ROUNDS = 7;
const payload = new Uint8Array(32);

/** A pipe each way: what a client writes, the server reads, and back. */
function wire() {
  const toServer = new TransformStream<Uint8Array, Uint8Array>();
  const toClient = new TransformStream<Uint8Array, Uint8Array>();
  return {
    client: { readable: toClient.readable, writable: toServer.writable },
    server: { readable: toServer.readable, writable: toClient.writable },
  };
}

/** µs per message echoed through two MessageStreams. */
async function viaMessageStreams(): Promise<number> {
  const { client: clientEnd, server: serverEnd } = wire();
  const server = new MessageStreams({ role: "server" });
  const serverSent = server.outgoing.readable.pipeTo(serverEnd.writable);
  const echoed = serverEnd.readable.pipeThrough(server.incoming)
    .pipeTo(server.outgoing.writable);
  const client = new MessageStreams({ role: "client" });
  const clientSent = client.outgoing.readable.pipeTo(clientEnd.writable);
  const messages = clientEnd.readable.pipeThrough(client.incoming).getReader();
  const writer = client.outgoing.writable.getWriter();

  const start = performance.now();
  const sending = (async () => {
    for (let i = 0; i < MESSAGES; i++) {
      await writer.ready;
      void writer.write(payload);
    }
  })();
  for (let i = 0; i < MESSAGES; i++) await messages.read();
  const elapsed = performance.now() - start;

  await sending;
  await writer.close();
  await Promise.all([client.closed, serverSent, echoed, clientSent]);
  return (elapsed * 1000) / MESSAGES;
}

/** µs per message echoed through two takeover() connections. */
async function viaTakeover(): Promise<number> {
  const { client: clientEnd, server: serverEnd } = wire();
  const server = takeover(serverEnd, { role: "server", keepalive: false });
  const echoed = (async () => {
    for await (const message of server) await server.send(message);
  })();
  const client = takeover(clientEnd, { role: "client" });

  const start = performance.now();
  const sending = (async () => {
    for (let i = 0; i < MESSAGES; i++) await client.send(payload);
  })();
  let received = 0;
  for await (const _ of client) if (++received === MESSAGES) break;
  const elapsed = performance.now() - start;

  await sending;
  await Promise.all([client.closed, server.closed, echoed]);
  return (elapsed * 1000) / MESSAGES;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const runtime = "Bun" in globalThis
  ? `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `Deno ${Deno.version.deno}`;
const streams: number[] = [];
const channel: number[] = [];
await viaMessageStreams(); // warm up both
await viaTakeover();
for (let round = 0; round < ROUNDS; round++) {
  streams.push(await viaMessageStreams());
  channel.push(await viaTakeover());
}
const a = median(streams), b = median(channel);
console.log(
  `${runtime}, 32 B echo over an in-memory pipe, median of ${ROUNDS} × ${MESSAGES} messages:`,
);
console.log(`  MessageStreams: ${a.toFixed(2)} µs/message`);
console.log(`  takeover():     ${b.toFixed(2)} µs/message`);
console.log(`  streams / takeover: ${(a / b).toFixed(2)}×`);
