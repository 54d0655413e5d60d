/**
 * permessage-deflate with a real browser (issue 17 point 4: Chromium always
 * offers it): a headless Chromium page's own `new WebSocket(...)` against
 * our `serve` with `deflate: true`, with `serverNoContextTakeover`, with
 * window bits limits (8 included), and with deflate off. The server checks
 * what was agreed (`connection.extensions`) and echoes; the page sends text
 * and binary messages of several sizes, below and above the threshold up
 * to 1 MiB, compressible and random, and checks each echo byte for byte.
 * Then one 1 MiB compressible message goes through a byte-counting TCP
 * proxy, to see it compressed on the wire both ways (or, off, not).
 *
 * playwright-core and Chromium as in chat_browser_test.ts (skipped, saying
 * why, when absent).
 *
 *     deno test -A tests/browser/deflate_browser_test.ts
 *     bun test ./tests/browser/deflate_browser_test.ts
 */
import assert from "node:assert/strict";
import { createConnection, createServer, type Socket } from "node:net";
import {
  type ExtensionOffer,
  type PermessageDeflateOptions,
  serve,
} from "../../mod.ts";
import { interopTest, RUNTIME } from "../interop/_harness.ts";
import { launch, playwright } from "./_playwright.ts";

const found = playwright();
const name = `${RUNTIME}: serve's permessage-deflate with Chromium`;

/** Below, at and above the default threshold (1024), up to 1 MiB. */
const SIZES = [1, 200, 1023, 1024, 1025, 20_000, 65_536, 1 << 20];
const KINDS = ["text", "random text", "binary", "random binary"];

/**
 * Runs in the page: opens a WebSocket to `url`, sends each kind at each
 * size, one at a time, and checks its echo; resolves with what the page
 * saw agreed and how many echoes matched, or rejects with the first
 * mismatch. Plain JavaScript, as the page runs it.
 */
const PAGE_ECHO = `async ({ url, sizes, kinds }) => {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const inbox = [];
  let closed = null;
  let wake = () => {};
  ws.onmessage = (event) => { inbox.push(event.data); wake(); };
  ws.onclose = (event) => { closed = event; wake(); };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("the WebSocket failed to open"));
  });
  const next = async () => {
    while (inbox.length === 0) {
      if (closed) throw new Error("closed with " + closed.code + " " + closed.reason);
      await new Promise((resolve) => wake = resolve);
    }
    return inbox.shift();
  };
  const randomBytes = (size) => {
    const bytes = new Uint8Array(size);
    for (let at = 0; at < size; at += 65536) {
      crypto.getRandomValues(bytes.subarray(at, at + 65536));
    }
    return bytes;
  };
  // ASCII, two-, three- and four-byte UTF-8 (a surrogate pair: two units).
  const alphabet = ["a", "Z", " ", "é", "ß", "中", "€", "😀"];
  const make = (kind, size) => {
    if (kind === "text") {
      return "The quick brown fox jumps over the lazy dog. ".repeat(size / 45 + 1).slice(0, size);
    }
    if (kind === "binary") {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = (i * 7) % 251;
      return bytes;
    }
    const bytes = randomBytes(size);
    if (kind === "random binary") return bytes;
    let text = "";
    for (let i = 0; text.length < size; i++) text += alphabet[bytes[i] & 7];
    return text;
  };
  let echoed = 0;
  for (const size of sizes) {
    for (const kind of kinds) {
      const sent = make(kind, size);
      ws.send(sent);
      const echo = await next();
      const what = kind + " of " + size + ": ";
      if (typeof sent === "string") {
        if (echo !== sent) throw new Error(what + "the echo differs (" + typeof echo + ")");
      } else {
        if (!(echo instanceof ArrayBuffer)) throw new Error(what + "not binary");
        const got = new Uint8Array(echo);
        if (got.length !== sent.length) throw new Error(what + "echoed " + got.length + " bytes");
        for (let i = 0; i < got.length; i++) {
          if (got[i] !== sent[i]) throw new Error(what + "byte " + i + " differs");
        }
      }
      echoed++;
    }
  }
  const extensions = ws.extensions;
  ws.close(1000);
  while (!closed) await new Promise((resolve) => wake = resolve);
  return { extensions, echoed, code: closed.code };
}`;

/** Runs in the page: one compressible 1 MiB text message to `url`, echoed. */
const PAGE_ONE = `async ({ url }) => {
  const ws = new WebSocket(url);
  const text = "compress me, compress me again. ".repeat(32768);
  const echo = await new Promise((resolve, reject) => {
    ws.onopen = () => ws.send(text);
    ws.onmessage = (event) => resolve(event.data);
    ws.onclose = (event) => reject(new Error("closed with " + event.code));
  });
  if (echo !== text) throw new Error("the echo differs");
  await new Promise((resolve) => { ws.onclose = resolve; ws.close(1000); });
  return text.length;
}`;

/** A TCP proxy to `port` that counts the bytes each way. */
async function countingProxy(port: number) {
  const counts = { up: 0, down: 0 };
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const proxy = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port });
    track(client);
    track(upstream);
    client.on("data", (chunk: Uint8Array) => counts.up += chunk.length);
    upstream.on("data", (chunk: Uint8Array) => counts.down += chunk.length);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) =>
    proxy.listen(0, "127.0.0.1", () => resolve())
  );
  const address = proxy.address();
  assert.ok(address !== null && typeof address === "object");
  return {
    port: address.port,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        proxy.close(() => resolve());
      }),
  };
}

/**
 * One server with `deflate`, one page: the server records what each
 * connection agreed and echoes; the page checks the echoes.
 */
function deflateCase(
  title: string,
  deflate: boolean | PermessageDeflateOptions,
  agreed: ExtensionOffer[],
  header: RegExp,
) {
  if (typeof found === "string") return;
  interopTest(`${name}: ${title}`, async (defer) => {
    const extensions: (readonly ExtensionOffer[])[] = [];
    const errors: unknown[] = [];
    const server = await serve({
      hostname: "127.0.0.1",
      port: 0,
      deflate,
      // Random text of 1 Mi UTF-16 units is up to 2 MiB of UTF-8.
      maxMessageSize: 4 << 20,
      onError: (error) => errors.push(error),
      // A page of the server's own origin to open the WebSocket from.
      fallback: () =>
        new Response("<!doctype html><title>deflate</title>", {
          headers: { "content-type": "text/html; charset=utf-8" },
        }),
    }, async (connection) => {
      // Plain copies: connection.extensions holds the extensions themselves.
      extensions.push(
        connection.extensions.map(({ name, params }) => ({
          name,
          params: { ...params },
        })),
      );
      for await (const message of connection) await connection.send(message);
    });
    defer(() => server.close());
    const browser = await launch(found.chromium);
    defer(() => browser.close());
    const page = await (await browser.newContext()).newPage();
    const http = `http://127.0.0.1:${server.addr.port}`;
    await page.goto(`${http}/`);
    const result = await page.evaluate(
      `(${PAGE_ECHO})(${
        JSON.stringify({
          url: `ws://127.0.0.1:${server.addr.port}/echo`,
          sizes: SIZES,
          kinds: KINDS,
        })
      })`,
    ) as { extensions: string; echoed: number; code: number };

    assert.deepEqual(extensions, [agreed]);
    assert.match(result.extensions, header);
    assert.equal(result.echoed, SIZES.length * KINDS.length);
    assert.equal(result.code, 1000);

    // On the wire: 1 MiB of compressible text each way, handshakes aside.
    const proxy = await countingProxy(server.addr.port);
    defer(() => proxy.close());
    const size = await page.evaluate(
      `(${PAGE_ONE})(${
        JSON.stringify({ url: `ws://127.0.0.1:${proxy.port}/echo` })
      })`,
    ) as number;
    assert.equal(size, 1 << 20);
    assert.deepEqual(extensions.slice(1), [agreed]);
    const { up, down } = proxy.counts;
    if (agreed.length > 0) {
      assert.ok(up < 64 << 10, `Chromium sent ${up} bytes`);
      assert.ok(down < 64 << 10, `the server sent ${down} bytes`);
    } else {
      assert.ok(up > 1 << 20, `Chromium sent ${up} bytes`);
      assert.ok(down > 1 << 20, `the server sent ${down} bytes`);
    }
    assert.deepEqual(errors, []);
  }, 60_000);
}

if (typeof found === "string") console.log(`${name}: ${found}`);

deflateCase(
  "deflate: true agrees on it with context takeover",
  true,
  [{ name: "permessage-deflate", params: {} }],
  /^permessage-deflate$/,
);
deflateCase(
  "serverNoContextTakeover is answered and honoured",
  { serverNoContextTakeover: true },
  [{
    name: "permessage-deflate",
    params: { server_no_context_takeover: true },
  }],
  /^permessage-deflate; server_no_context_takeover$/,
);
deflateCase(
  "window bits limits: server 10, client 9 (Chromium offered a value-less client_max_window_bits)",
  { serverMaxWindowBits: 10, clientMaxWindowBits: 9 },
  [{
    name: "permessage-deflate",
    params: { server_max_window_bits: "10", client_max_window_bits: "9" },
  }],
  /^permessage-deflate; server_max_window_bits=10; client_max_window_bits=9$/,
);
deflateCase(
  "window bits 8 both ways, and no context takeover for the client",
  {
    serverMaxWindowBits: 8,
    clientMaxWindowBits: 8,
    clientNoContextTakeover: true,
  },
  [{
    name: "permessage-deflate",
    params: {
      client_no_context_takeover: true,
      server_max_window_bits: "8",
      client_max_window_bits: "8",
    },
  }],
  /^permessage-deflate; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8$/,
);
deflateCase(
  "deflate off: Chromium's offer is declined and plain messages work",
  false,
  [],
  /^$/,
);
