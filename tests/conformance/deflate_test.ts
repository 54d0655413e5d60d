/**
 * permessage-deflate conformance in the manner of the Autobahn testsuite's
 * categories 12 and 13, over real sockets (127.0.0.1, port 0), both twins:
 *
 * - our `serve({ deflate })` echoing, against `ws` as the client;
 * - our `connect()` echoing nothing but checking echoes, against `ws` as the
 *   echo server;
 * - and our client against our server.
 *
 * `ws` (npm, test-only: `npm ci` in `bench/`) is the independent peer: it
 * passes Autobahn 12 and 13, and offers or answers every parameter. Each
 * case sends runs of messages of every Autobahn size (16 B to 128 KiB),
 * compressible text and incompressible binary, under one parameter
 * combination (13.x), with context taken over between them (12.x).
 *
 *     deno task test tests/conformance/deflate_test.ts
 *     WSSTREAM_CONFORMANCE=full ...   # Autobahn's 1000 messages per size
 *
 * Without `bench/node_modules/ws`, the ws cases are skipped with a message.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { connect } from "../../src/client.ts";
import { serve } from "../../src/server.ts";
import {
  permessageDeflate,
  type PermessageDeflateOptions,
} from "../../src/permessage_deflate.ts";
import type { WebSocketConnection } from "../../src/connection.ts";
import type { Message } from "../../src/protocol.ts";
import { runtimeName } from "../../src/runtime.ts";
import { prng, randomBytes } from "../_frames.ts";
import { within } from "../_wait.ts";

const FULL = (globalThis.process?.env ?? {}).WSSTREAM_CONFORMANCE === "full";
/** Messages per size: Autobahn sends 1000; the fast mode a few. */
const COUNT = FULL ? 1000 : 4;
const SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072];
const HOST = "127.0.0.1";

// ws, loaded with require: Deno cannot import its CommonJS as ESM.
const wsPath = fileURLToPath(
  new URL("../../bench/node_modules/ws/index.js", import.meta.url),
);
const HAS_WS = existsSync(wsPath);
// deno-lint-ignore no-explicit-any
const ws: any = HAS_WS ? createRequire(import.meta.url)(wsPath) : null;
const skipWs = HAS_WS
  ? false
  : "ws is not installed: run `npm ci` in bench/ to test against it";

/**
 * Autobahn 13.x: what the client offers (and, here, the server answers with
 * the same options): id, label, options.
 */
const COMBINATIONS: [string, string, PermessageDeflateOptions][] = [
  ["12/13.1", "defaults", {}],
  ["13.2", "client_no_context_takeover", { clientNoContextTakeover: true }],
  ["13.3", "client_max_window_bits=8", { clientMaxWindowBits: 8 }],
  ["13.4", "client_max_window_bits=15", { clientMaxWindowBits: 15 }],
  ["13.5", "server_no_context_takeover", { serverNoContextTakeover: true }],
  ["13.6", "server_max_window_bits=8", { serverMaxWindowBits: 8 }],
  ["13.7", "server_max_window_bits=15", { serverMaxWindowBits: 15 }],
  ["13.8", "both no_context_takeover, both windows 9", {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 9,
    clientMaxWindowBits: 9,
  }],
];

/** The messages of one run: every size, text then binary, COUNT of each. */
function* messages(): Generator<Message> {
  const random = prng(12);
  const words = ["lorem ", "ipsum ", "dolor ", "sit ", "amet ", "consectetur "];
  for (const size of SIZES) {
    for (let i = 0; i < COUNT; i++) {
      let text = "";
      while (text.length < size) text += words[Math.floor(random() * 6)];
      yield text.slice(0, size);
      yield randomBytes(random, size);
    }
  }
}

function same(a: unknown, b: Message): boolean {
  if (typeof b === "string") return a === b;
  if (!(a instanceof Uint8Array) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Sends every message and checks each echo as it comes, in order. */
async function echoRun(connection: WebSocketConnection): Promise<number> {
  const expected = [...messages()];
  const reading = (async () => {
    let i = 0;
    for await (const echo of connection) {
      assert.ok(same(echo, expected[i]!), `echo ${i} differs`);
      if (++i === expected.length) return i;
    }
    return i;
  })();
  for (const message of expected) await connection.send(message);
  const got = await reading;
  assert.equal(got, expected.length);
  return expected.reduce(
    (n, m) => n + (typeof m === "string" ? m.length : m.length),
    0,
  );
}

/** ws's option names are ours; `threshold: 0` compresses every message. */
function wsOptions(options: PermessageDeflateOptions) {
  return { threshold: 0, ...options };
}

const CASE_TIMEOUT = FULL ? 120_000 : 15_000;

describe(`conformance 12/13: permessage-deflate on ${runtimeName()}${FULL ? " (full)" : ""}`, () => {
  for (const [id, label, options] of COMBINATIONS) {
    test(
      `${id} our server, ws client: ${label}`,
      { skip: skipWs },
      () =>
        within(
          CASE_TIMEOUT,
          (async () => {
            const agreed: WebSocketConnection[] = [];
            const server = await serve({
              hostname: HOST,
              port: 0,
              deflate: { threshold: 0, ...options },
              keepalive: false,
            }, async (connection) => {
              agreed.push(connection);
              for await (const message of connection) {
                await connection.send(message);
              }
            });
            try {
              const client = new ws.WebSocket(
                `ws://${HOST}:${server.addr.port}/`,
                {
                  perMessageDeflate: wsOptions(options),
                },
              );
              await new Promise((resolve, reject) => {
                client.once("open", resolve);
                client.once("error", reject);
              });
              assert.match(client.extensions, /^permessage-deflate/);
              const expected = [...messages()];
              let i = 0;
              const done = new Promise<void>((resolve, reject) => {
                client.on("message", (data: Uint8Array, isBinary: boolean) => {
                  const want = expected[i]!;
                  const got = isBinary
                    ? new Uint8Array(data.buffer, data.byteOffset, data.length)
                    : new TextDecoder().decode(data);
                  if (!same(got, want)) {
                    reject(new Error(`echo ${i} differs`));
                  }
                  if (++i === expected.length) resolve();
                });
                client.once("close", () => reject(new Error("closed early")));
              });
              for (const message of expected) {
                client.send(message, { binary: typeof message !== "string" });
              }
              await done;
              const [connection] = agreed;
              assert.equal(
                connection!.extensions[0]!.name,
                "permessage-deflate",
              );
              // Compressible text makes the wire smaller than the messages.
              assert.ok(
                connection!.info.bytesSent < connection!.info.bytesReceived * 2,
              );
              const closed = new Promise((resolve) =>
                client.once("close", resolve)
              );
              client.close(1000);
              await closed;
            } finally {
              await server.close();
            }
          })(),
        ),
    );

    test(
      `${id} our client, ws server: ${label}`,
      { skip: skipWs },
      () =>
        within(
          CASE_TIMEOUT,
          (async () => {
            const wss = new ws.WebSocketServer({
              host: HOST,
              port: 0,
              perMessageDeflate: wsOptions(options),
            });
            await new Promise((resolve) => wss.once("listening", resolve));
            wss.on("connection", (socket: {
              on(
                event: string,
                listener: (data: Uint8Array, binary: boolean) => void,
              ): void;
              send(data: Uint8Array, options: { binary: boolean }): void;
            }) => {
              socket.on(
                "message",
                (data, binary) => socket.send(data, { binary }),
              );
            });
            try {
              const connection = await connect(
                `ws://${HOST}:${wss.address().port}/`,
                {
                  extensions: [permessageDeflate({ threshold: 0, ...options })],
                },
              );
              assert.equal(
                connection.extensions[0]!.name,
                "permessage-deflate",
              );
              const total = await echoRun(connection);
              // Half the bytes are compressible text: the wire must be smaller.
              assert.ok(
                connection.info.bytesSent < total,
                "nothing was compressed",
              );
              await connection.close();
            } finally {
              for (const client of wss.clients) client.terminate();
              await new Promise((resolve) => wss.close(resolve));
            }
          })(),
        ),
    );

    test(`${id} our client, our server: ${label}`, () =>
      within(
        CASE_TIMEOUT,
        (async () => {
          const server = await serve({
            hostname: HOST,
            port: 0,
            deflate: { threshold: 0, ...options },
            keepalive: false,
          }, async (connection) => {
            for await (const message of connection) {
              await connection.send(message);
            }
          });
          try {
            const connection = await connect(
              `ws://${HOST}:${server.addr.port}/`,
              {
                extensions: [permessageDeflate({ threshold: 0, ...options })],
              },
            );
            const total = await echoRun(connection);
            assert.ok(connection.info.bytesSent < total);
            await connection.close();
          } finally {
            await server.close();
          }
        })(),
      ));
  }

  test("a client offering nothing gets no extension from a deflate server", () =>
    within(
      5_000,
      (async () => {
        const server = await serve({
          hostname: HOST,
          port: 0,
          deflate: true,
          keepalive: false,
        }, async (connection) => {
          for await (const message of connection) {
            await connection.send(message);
          }
        });
        try {
          const connection = await connect(
            `ws://${HOST}:${server.addr.port}/`,
            {
              extensions: [],
            },
          );
          assert.deepEqual(connection.extensions, []);
          await connection.send("x");
          for await (const echo of connection) {
            assert.equal(echo, "x");
            break;
          }
        } finally {
          await server.close();
        }
      })(),
    ));

  test("by default our client offers deflate and our server declines it", () =>
    within(
      5_000,
      (async () => {
        const server = await serve({
          hostname: HOST,
          port: 0,
          keepalive: false,
        }, (connection) => {
          void connection.close();
        });
        try {
          const connection = await connect(`ws://${HOST}:${server.addr.port}/`);
          assert.deepEqual(connection.extensions, []);
          await connection.closed;
        } finally {
          await server.close();
        }
      })(),
    ));
});
