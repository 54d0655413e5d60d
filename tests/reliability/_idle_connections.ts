/**
 * A child process for the idle-connections measurement, so each side's
 * memory is its own: one process runs the server, another the clients.
 *
 *     <runtime> _idle_connections.ts server <count>
 *     <runtime> _idle_connections.ts clients <port> <count>
 *
 * Both print `baseline <rss> <heapUsed>` first (bytes, after a garbage
 * collection when the runtime allows one). The server prints
 * `listening <port>`, and once `count` connections are open and idle,
 * `open <count> <rss> <heapUsed>`; it then waits for a line `close` on stdin,
 * closes every connection (1001) and prints `closed`. The clients open
 * `count` connections, a few at a time, print `open <count> <rss> <heapUsed>`,
 * wait for the server to close them all and print `closed <count> clean` if
 * every close was a clean 1001. Errors go to stderr, with exit code 1.
 *
 * @module
 */
import process from "node:process";
import { connect } from "../../src/client.ts";
import type { CloseInfo } from "../../src/connection.ts";
import { serve } from "../../src/server.ts";
import { collectGarbage, readMemory } from "./_memory.ts";

const HOST = "127.0.0.1";
/** Handshakes in flight at once, so the listen backlog never overflows. */
const CONCURRENCY = 64;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Collects garbage, waits for things to settle, and reads memory. */
async function settledMemory(): Promise<string> {
  collectGarbage();
  await sleep(200);
  collectGarbage();
  const { rss, heapUsed } = readMemory();
  return `${rss} ${heapUsed}`;
}

/** Resolves with the first line `line` on stdin. */
function stdinLine(line: string): Promise<void> {
  return new Promise((resolve) => {
    let text = "";
    const onData = (chunk: Uint8Array | string) => {
      text += typeof chunk === "string"
        ? chunk
        : new TextDecoder().decode(chunk);
      if (text.split("\n").includes(line)) {
        process.stdin.off("data", onData);
        process.stdin.pause();
        resolve();
      }
    };
    process.stdin.on("data", onData);
  });
}

async function runServer(count: number): Promise<void> {
  console.log(`baseline ${await settledMemory()}`);
  const server = await serve(
    { hostname: HOST, port: 0, onError: (error) => console.error(error) },
    () => {}, // idle: nobody reads or writes
  );
  console.log(`listening ${server.addr.port}`);
  while (server.connections.size < count) await sleep(20);
  console.log(`open ${server.connections.size} ${await settledMemory()}`);
  await stdinLine("close");
  await server.close();
  console.log("closed");
}

async function runClients(port: number, count: number): Promise<void> {
  console.log(`baseline ${await settledMemory()}`);
  const url = `ws://${HOST}:${port}/`;
  const closed: Promise<CloseInfo>[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        next++;
        const client = await connect(url);
        closed.push(client.closed);
      }
    }),
  );
  console.log(`open ${closed.length} ${await settledMemory()}`);
  const infos = await Promise.all(closed);
  const unclean = infos.filter((info) =>
    info.closeCode !== 1001 || !info.wasClean
  );
  if (unclean.length > 0) {
    throw new Error(
      `${unclean.length} closes were not a clean 1001: ${
        JSON.stringify(unclean[0])
      }`,
    );
  }
  console.log(`closed ${infos.length} clean`);
}

const [mode, ...args] = process.argv.slice(2);
try {
  if (mode === "server") await runServer(Number(args[0]));
  else if (mode === "clients") {
    await runClients(Number(args[0]), Number(args[1]));
  } else throw new Error(`unknown mode ${mode}: use server or clients`);
  // Reading stdin keeps some runtimes alive: leave now the work is done.
  process.exit(0);
} catch (error) {
  console.error(error);
  process.exit(1);
}
