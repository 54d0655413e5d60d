/**
 * The soak: continuous no-loss echo load for minutes, with memory printed
 * at intervals.
 *
 *     deno task soak --seconds 180
 *     bun tests/soak/main.ts --seconds 180
 *
 * Options (all optional):
 *
 * - `--seconds N`   how long to run (default 300)
 * - `--clients C`   concurrent clients (default 16)
 * - `--interval S`  seconds between progress lines (default 10)
 * - `--max-size B`  the largest message in bytes (default 262144)
 * - `--idle N`      also hold N idle connections, opened by a child process
 *                   (default 0; up to about 9,000 with a file limit of 20,000)
 * - `--seed N`      the PRNG seed (default 1)
 *
 * One process runs an echo `serve()` and the clients (`connect()`), so the
 * memory printed is both ends' together. Each client runs sessions one after
 * another: it connects, sends 20 to 400 numbered messages (random sizes over
 * every frame-length boundary up to `--max-size`; text and binary; whole,
 * fragmented and streamed, through `send()` and `writable`), checks that
 * each echo comes back once, in order, intact, closes cleanly and connects
 * again: connections churn all the time. When the time is up each client
 * finishes its session; then the server closes.
 *
 * Every `--interval` seconds it prints: elapsed seconds, messages echoed,
 * MiB echoed, RSS, heap used, open server connections and sessions done. At
 * the end, a summary: RSS min/max/final, totals, and the failures. Any loss,
 * corruption, unclean close or server-side error is a failure: the exit
 * code is then 1.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { connect } from "../../src/client.ts";
import { runtimeName } from "../../src/runtime.ts";
import { serve } from "../../src/server.ts";
import { type ChildScript, runScript } from "../reliability/_child.ts";
import { type MemoryReading, mib, readMemory } from "../reliability/_memory.ts";
import {
  EchoChecker,
  echoSession,
  MessageSource,
} from "../reliability/_numbered_messages.ts";
import { prng } from "../_frames.ts";

const HOST = "127.0.0.1";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    seconds: { type: "string", default: "300" },
    clients: { type: "string", default: "16" },
    interval: { type: "string", default: "10" },
    "max-size": { type: "string", default: String(256 * 1024) },
    idle: { type: "string", default: "0" },
    seed: { type: "string", default: "1" },
  },
});

function positive(name: string, text: string, zero = false): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < (zero ? 0 : 1)) {
    console.error(
      `--${name} must be a ${
        zero ? "non-negative" : "positive"
      } integer, got ${text}`,
    );
    process.exit(2);
  }
  return value;
}

const seconds = positive("seconds", values.seconds);
const clientCount = positive("clients", values.clients);
const interval = positive("interval", values.interval);
const maxSize = positive("max-size", values["max-size"]);
const idle = positive("idle", values.idle, true);
const seed = positive("seed", values.seed, true);

const failures: string[] = [];
const fail = (what: string) => {
  if (failures.length < 20) console.error(`FAILURE: ${what}`);
  failures.push(what);
};

const server = await serve(
  { hostname: HOST, port: 0, onError: (error) => fail(`server: ${error}`) },
  async (connection) => {
    try {
      for await (const message of connection.readable) {
        await connection.send(message);
      }
    } catch (error) {
      fail(`server connection: ${error}`);
    }
  },
);
const url = `ws://${HOST}:${server.addr.port}/`;

// Idle connections from a child process, held for the whole run.
let idleClients: ChildScript | null = null;
if (idle > 0) {
  idleClients = runScript(
    new URL("../reliability/_idle_connections.ts", import.meta.url),
    ["clients", String(server.addr.port), String(idle)],
  );
  await idleClients.lines.next(10_000, "the idle clients' baseline");
  const open = await idleClients.lines.next(
    Math.max(30_000, idle * 10),
    "the idle connections",
  );
  if (!open.startsWith(`open ${idle} `)) {
    console.error(`idle clients: ${open}\n${idleClients.stderr()}`);
    process.exit(1);
  }
}

console.log(
  `soak on ${runtimeName()}: ${seconds} s, ${clientCount} clients, messages up to ${maxSize} bytes, ${idle} idle connections, seed ${seed}`,
);
console.log(
  "elapsed_s  messages  echoed_MiB  rss_MiB  heap_MiB  open_conns  sessions",
);

const started = performance.now();
const deadline = started + seconds * 1000;
const live = new Set<EchoChecker>();
let doneMessages = 0;
let doneBytes = 0;
let sessions = 0;
const rss = { min: Infinity, max: 0 };

function totals(): { messages: number; bytes: number } {
  let messages = doneMessages;
  let bytes = doneBytes;
  for (const checker of live) {
    messages += checker.messages;
    bytes += checker.bytes;
  }
  return { messages, bytes };
}

function sampleRss(): MemoryReading {
  const now = readMemory();
  rss.min = Math.min(rss.min, now.rss);
  rss.max = Math.max(rss.max, now.rss);
  return now;
}

function report(): void {
  const { rss: resident, heapUsed } = sampleRss();
  const { messages, bytes } = totals();
  const elapsed = (performance.now() - started) / 1000;
  console.log(
    [
      elapsed.toFixed(0).padStart(9),
      String(messages).padStart(8),
      (bytes / 2 ** 20).toFixed(1).padStart(10),
      (resident / 2 ** 20).toFixed(1).padStart(7),
      (heapUsed / 2 ** 20).toFixed(1).padStart(8),
      String(server.connections.size).padStart(10),
      String(sessions).padStart(8),
    ].join("  "),
  );
}

const sampler = setInterval(sampleRss, 1000);
const reporter = setInterval(report, interval * 1000);

/** One client slot: sessions back to back until the deadline. */
async function runClient(id: number): Promise<void> {
  const random = prng(seed * 7919 + id);
  for (let session = 0; performance.now() < deadline; session++) {
    const count = 20 + Math.floor(random() * 381);
    const window = 1 + Math.floor(random() * 8);
    const source = new MessageSource(id, seed * 1_000_003 + session, {
      maxSize,
    });
    const checker = new EchoChecker(id);
    live.add(checker);
    let connection;
    try {
      connection = await connect(url);
      await echoSession(connection, source, checker, count, window);
      sessions++;
    } catch (error) {
      fail(`client ${id}, session ${session}: ${(error as Error).message}`);
      connection?.close().catch(() => {}); // at the latest at closeTimeout
      return;
    } finally {
      live.delete(checker);
      doneMessages += checker.messages;
      doneBytes += checker.bytes;
    }
  }
}

await Promise.all(
  Array.from({ length: clientCount }, (_, id) => runClient(id)),
);
clearInterval(reporter);
clearInterval(sampler);
report();

// The server forgets a connection once its close is done, which is a little
// after the client's: give it a second.
for (let i = 0; i < 100 && server.connections.size > idle; i++) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
const openAtEnd = server.connections.size - idle;
if (openAtEnd !== 0) {
  fail(`${openAtEnd} server connections still open after every client closed`);
}
await server.close();
if (idleClients !== null) {
  const closed = await idleClients.lines.next(60_000, "the idle clients' close")
    .catch((error) => `${error}`);
  if (closed !== `closed ${idle} clean`) fail(`idle clients: ${closed}`);
  if ((await idleClients.exited) !== 0) {
    fail(`idle clients exited with an error: ${idleClients.stderr()}`);
  }
}

const final = readMemory();
const { messages, bytes } = totals();
const elapsed = (performance.now() - started) / 1000;
console.log(
  `\nsummary: ${
    elapsed.toFixed(0)
  } s on ${runtimeName()}, ${messages} messages (${
    mib(bytes)
  }) echoed in ${sessions} sessions, ${
    (bytes / 2 ** 20 / elapsed).toFixed(1)
  } MiB/s`,
);
console.log(
  `RSS min ${mib(rss.min)}, max ${mib(rss.max)}, final ${
    mib(final.rss)
  }; heap final ${mib(final.heapUsed)}`,
);
if (failures.length > 0) {
  console.log(`FAILED: ${failures.length} failures (first: ${failures[0]})`);
  process.exit(1);
}
console.log("no loss: every message echoed once, in order, intact");
process.exit(0);
