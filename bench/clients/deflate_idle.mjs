// @ts-check
/**
 * The deflate benchmark's memory client: opens N `ws` connections that
 * agree on permessage-deflate (with or without context takeover), each
 * exchanging one compressible 2 KiB message (so both ends' zlib streams
 * have been made) and then staying idle, and reads the server's resident
 * memory (VmRSS of PID) before and after. One connection is opened and used
 * before the first reading, so loading zlib is not counted. Prints
 * `RESULT {"connections","rssBeforeKiB","rssAfterKiB","perConnectionKiB","extensions"}`.
 * Runs on Node (Linux: /proc).
 *
 *     node bench/clients/deflate_idle.mjs PORT PID N [takeover|no-takeover]
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { compressibleText } from "./_deflate_text.mjs";

const [port, pid, n] = process.argv.slice(2, 5).map(Number);
const mode = process.argv[5] ?? "takeover";
const noTakeover = mode === "no-takeover";
const message = compressibleText(2048);
const SETTLE_MS = 1000;
const BATCH = 50;
let agreed = "";

/** @returns {number} */
function rssKiB() {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`No VmRSS for process ${pid}`);
  return Number(match[1]);
}

/** Opens one connection and has one message echoed. @returns {Promise<WebSocket>} */
function open() {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/`, {
      perMessageDeflate: {
        clientNoContextTakeover: noTakeover,
        serverNoContextTakeover: noTakeover,
      },
    });
    socket.on("error", reject);
    // ws's `extensions` names them only: the 101's header has the params.
    socket.on("upgrade", (response) => {
      agreed = String(response.headers["sec-websocket-extensions"] ?? "");
    });
    socket.on("open", () => socket.send(message));
    socket.on("message", (data) => {
      if (String(data) !== message) reject(new Error("Bad echo"));
      else resolve(socket);
    });
  });
}

const first = await open();
await sleep(SETTLE_MS);
const before = rssKiB();
const sockets = [first];
for (let opened = 0; opened < n;) {
  const batch = Math.min(BATCH, n - opened);
  sockets.push(...await Promise.all(Array.from({ length: batch }, open)));
  opened += batch;
}
await sleep(SETTLE_MS);
const after = rssKiB();
console.log(`RESULT ${
  JSON.stringify({
    connections: n,
    rssBeforeKiB: before,
    rssAfterKiB: after,
    perConnectionKiB: (after - before) / n,
    extensions: agreed,
  })
}`);
for (const socket of sockets) socket.terminate();
