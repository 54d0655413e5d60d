/**
 * The handshake's head limits end to end: heads exactly at each limit and
 * one byte (for the count, one field) over it, sent to `serve()` over a
 * socket by a raw client that reads the response's status line.
 *
 *     deno test -A --import-map tests/_deno_import_map.json tests/faults/
 *     bun test ./tests/faults/
 *
 * At the limit the server upgrades (101); over it, it refuses with the
 * limit's status (414 for the request line, 431 for the rest) and closes.
 * With small limits the over-limit head is sent one byte per write and only
 * up to the byte that crosses the limit: the refusal must come without the
 * rest, as `HeadParser` refuses on that byte. The parser's own tests, every
 * split included, are in `tests/http1_test.ts`.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { DEFAULT_HEAD_LIMITS, type HeadLimits } from "../../src/http1_parse.ts";
import { runtimeName } from "../../src/runtime.ts";
import { serve } from "../../src/server.ts";
import { within } from "../_wait.ts";
import {
  type Defer,
  encoder,
  faultTest,
  HOST,
  latin1,
  PROMPT,
  rawTcp,
  readHttpHead,
  readToEnd,
  statusOf,
  TransportLog,
} from "./_faults.ts";

/** An upgrade request's lines after the request line (5 fields). */
function upgradeFields(port: number): string[] {
  return [
    `Host: ${HOST}:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
  ];
}

const head = (lines: string[]) => lines.join("\r\n") + "\r\n\r\n";
const requestLine = (length: number) =>
  `GET /${"a".repeat(length - "GET / HTTP/1.1".length)} HTTP/1.1`;
const field = (length: number) => `X-P: ${"p".repeat(length - 5)}`;

/** A limit, and an upgrade request exactly at it and one over it. */
interface Case {
  limit: keyof HeadLimits;
  at: string;
  over: string;
  status: number;
  /** The index of the byte of `over` that crosses the limit. */
  crossing: number;
}

function cases(port: number, limits: HeadLimits): Case[] {
  const fields = upgradeFields(port);
  const start = "GET / HTTP/1.1\r\n" + fields.map((f) => `${f}\r\n`).join("");
  /** An upgrade request of `size` bytes, padded in fields of at most maxLineLength. */
  const sized = (size: number) => {
    const budget = size - head(["GET / HTTP/1.1", ...fields]).length;
    const count = Math.ceil(budget / (limits.maxLineLength + 2));
    const pads = Array.from(
      { length: count },
      (_, i) =>
        field(Math.floor(budget / count) + (i < budget % count ? 1 : 0) - 2),
    );
    return head(["GET / HTTP/1.1", ...fields, ...pads]);
  };
  const counted = (n: number) =>
    head([
      "GET / HTTP/1.1",
      ...fields,
      ...Array.from({ length: n - fields.length }, () => field(6)),
    ]);
  return [{
    limit: "maxRequestLineLength",
    at: head([requestLine(limits.maxRequestLineLength), ...fields]),
    over: head([requestLine(limits.maxRequestLineLength + 1), ...fields]),
    status: 414,
    crossing: limits.maxRequestLineLength,
  }, {
    limit: "maxLineLength",
    at: head(["GET / HTTP/1.1", ...fields, field(limits.maxLineLength)]),
    over: head(["GET / HTTP/1.1", ...fields, field(limits.maxLineLength + 1)]),
    status: 431,
    crossing: start.length + limits.maxLineLength,
  }, {
    limit: "maxHeaderCount",
    at: counted(limits.maxHeaderCount),
    over: counted(limits.maxHeaderCount + 1),
    status: 431,
    crossing: start.length + (limits.maxHeaderCount - fields.length) * 8,
  }, {
    limit: "maxHeadSize",
    at: sized(limits.maxHeadSize),
    over: sized(limits.maxHeadSize + 1),
    status: 431,
    crossing: limits.maxHeadSize,
  }];
}

/** `serve()` on a free port with `headLimits`; its handler closes at once. */
async function server(defer: Defer, headLimits?: Partial<HeadLimits>) {
  const log = new TransportLog();
  const server = await serve({
    hostname: HOST,
    port: 0,
    keepalive: false,
    closeTimeout: 300,
    transport: log.runtime,
    ...(headLimits ? { headLimits } : {}),
  }, (connection) => void connection.close());
  defer(() => server.close());
  return { port: server.addr.port, log };
}

/** Sends `bytes` (in one write, or one byte per write); returns the response head. */
async function send(
  port: number,
  defer: Defer,
  bytes: Uint8Array,
  byteByByte = false,
): Promise<{ status: number; text: string }> {
  const transport = await rawTcp(port, defer);
  const writer = transport.writable.getWriter();
  const writing = (async () => {
    if (!byteByByte) return await writer.write(bytes);
    for (let i = 0; i < bytes.length; i++) {
      await writer.write(bytes.subarray(i, i + 1));
    }
  })();
  writing.catch(() => {}); // a refusal may close the socket under the write
  const reader = transport.readable.getReader();
  const { head } = await within(PROMPT, readHttpHead(reader));
  await writing.catch(() => {});
  const status = statusOf(head);
  if (status === 101) {
    transport.close();
    return { status, text: latin1(head) };
  }
  // A refusal: the rest is its body, then the server closes.
  await within(PROMPT, readToEnd(reader));
  return { status, text: latin1(head) };
}

const SMALL: HeadLimits = {
  maxRequestLineLength: 40,
  maxLineLength: 48,
  maxHeaderCount: 8,
  maxHeadSize: 256,
};

describe(`head limits over ${runtimeName()} sockets`, () => {
  faultTest(
    "serve upgrades heads exactly at each default limit and refuses one over with 414 or 431",
    async (defer) => {
      const { port, log } = await server(defer);
      for (const c of cases(port, DEFAULT_HEAD_LIMITS)) {
        assert.equal(
          (await send(port, defer, encoder.encode(c.at))).status,
          101,
        );
        const refused = await send(port, defer, encoder.encode(c.over));
        assert.equal(refused.status, c.status, `${c.limit}: ${refused.text}`);
        assert.match(refused.text, /\r\nConnection: close\r\n/i);
      }
      // The server closed every refused socket itself.
      for (const tracked of log.all) await within(PROMPT, tracked.closed);
    },
    15_000,
  );

  faultTest(
    "serve refuses a head dripped byte by byte on the byte that crosses each small limit",
    async (defer) => {
      const { port, log } = await server(defer, SMALL);
      for (const c of cases(port, SMALL)) {
        const at = encoder.encode(c.at);
        const over = encoder.encode(c.over);
        assert.equal(
          (await send(port, defer, at, true)).status,
          101,
          `${c.limit} at the limit`,
        );
        // Only up to the crossing byte: the refusal needs nothing more.
        const refused = await send(
          port,
          defer,
          over.subarray(0, c.crossing + 1),
          true,
        );
        assert.equal(refused.status, c.status, `${c.limit}: ${refused.text}`);
        // One byte fewer is no refusal yet: the server waits for the rest.
        const transport = await rawTcp(port, defer);
        await transport.writable.getWriter().write(
          over.subarray(0, c.crossing),
        );
        const reading = transport.readable.getReader().read();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const early = await Promise.race([
          reading.then(() => "answered", () => "answered"),
          new Promise((
            resolve,
          ) => (timer = setTimeout(resolve, 100, "waiting"))),
        ]);
        clearTimeout(timer);
        assert.equal(early, "waiting", `${c.limit}: refused a byte early`);
        transport.close();
        await reading.catch(() => {});
      }
      for (const tracked of log.all) await within(PROMPT, tracked.closed);
    },
    15_000,
  );
});
