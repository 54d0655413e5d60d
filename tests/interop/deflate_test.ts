/**
 * permessage-deflate against Bun's native WebSocket, both ends: our client
 * against `Bun.serve` with `perMessageDeflate`, and Bun's client (which
 * offers it when asked) against our `serve({ deflate: true })`. On Deno
 * these are skipped: Deno's own WebSocket has no compression at all.
 *
 *     bun test ./tests/interop/deflate_test.ts
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { connect } from "../../src/client.ts";
import { serve } from "../../src/server.ts";
import { within } from "../_wait.ts";

const HOST = "127.0.0.1";
// deno-lint-ignore no-explicit-any
const Bun = (globalThis as any).Bun;
const skip = Bun === undefined
  ? "Bun only: Deno's WebSocket has no permessage-deflate"
  : false;
const TEXT = "compress me, compress me again. ".repeat(2000); // 64 000 bytes

test(
  "our client and Bun.serve agree on permessage-deflate and compress both ways",
  {
    skip,
  },
  () =>
    within(
      10_000,
      (async () => {
        const offers: (string | null)[] = [];
        const server = Bun.serve({
          hostname: HOST,
          port: 0,
          fetch(
            request: Request,
            server: { upgrade(request: Request): boolean },
          ) {
            offers.push(request.headers.get("sec-websocket-extensions"));
            return server.upgrade(request) ? undefined : new Response("no", {
              status: 400,
            });
          },
          websocket: {
            perMessageDeflate: true,
            // `true`: compress the echo, whatever its size.
            message(
              ws: { send(m: unknown, compress: boolean): void },
              m: unknown,
            ) {
              ws.send(m, true);
            },
          },
        });
        try {
          const connection = await connect(`ws://${HOST}:${server.port}/`);
          assert.match(offers[0]!, /^permessage-deflate/);
          assert.deepEqual(connection.extensions.map((e) => e.name), [
            "permessage-deflate",
          ]);
          await connection.send(TEXT);
          for await (const echo of connection) {
            assert.equal(echo, TEXT);
            break;
          }
          // Compressed both ways: far fewer bytes than the text, in and out.
          assert.ok(connection.info.bytesSent < TEXT.length / 10);
          assert.ok(connection.info.bytesReceived < TEXT.length / 10);
          await connection.close();
        } finally {
          await server.stop(true);
        }
      })(),
    ),
);

test(
  "Bun's client and our serve({ deflate: true }) agree and compress both ways",
  {
    skip,
  },
  () =>
    within(
      10_000,
      (async () => {
        let received = -1;
        const server = await serve({
          hostname: HOST,
          port: 0,
          deflate: true,
          keepalive: false,
        }, async (connection) => {
          for await (const message of connection) {
            received = connection.info.bytesReceived;
            await connection.send(message);
          }
        });
        try {
          const socket = new WebSocket(
            `ws://${HOST}:${server.addr.port}/`,
            { perMessageDeflate: true } as unknown as string[],
          );
          await new Promise((resolve, reject) => {
            socket.onopen = resolve;
            socket.onerror = reject;
          });
          assert.match(socket.extensions, /^permessage-deflate/);
          const echo = new Promise<unknown>((resolve) => {
            socket.onmessage = (event) => resolve(event.data);
          });
          socket.send(TEXT);
          assert.equal(await echo, TEXT);
          assert.ok(
            received > 0 && received < TEXT.length / 10,
            `${received} bytes`,
          );
          const closed = new Promise((resolve) => (socket.onclose = resolve));
          socket.close(1000);
          await closed;
        } finally {
          await server.close();
        }
      })(),
    ),
);
