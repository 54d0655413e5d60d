/**
 * Helpers for the fault suites (`tests/faults/*_test.ts`): bounded tests
 * that close all they opened, transports that record when the library
 * closes them, and raw peers over real sockets (127.0.0.1) that misbehave on
 * purpose, built on `RawPeer` (`tests/_pipe.ts`), which reads only when asked.
 *
 * Under `deno task test` (or `deno test --import-map
 * tests/_deno_import_map.json`) Deno runs them with its op and resource
 * sanitizers on (see `tests/_node_test_on_deno.ts`), so a socket or timer the
 * library leaves behind fails the test that made it; on both runtimes the
 * recording transports show the library closing each socket itself, and
 * when.
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { CloseInfo, WebSocketConnection } from "../../src/connection.ts";
import { computeAccept } from "../../src/handshake.ts";
import { HeadParser, parseRequestHead } from "../../src/http1_parse.ts";
import { currentRuntime } from "../../src/runtime.ts";
import type { RuntimeTransports, Transport } from "../../src/transport.ts";
import { RawPeer } from "../_pipe.ts";
import { sleep, within } from "../_wait.ts";

/** Where everything listens and connects. */
export const HOST = "127.0.0.1";
/** The short deadlines the faults run under, in ms. */
export const HANDSHAKE_TIMEOUT = 300;
export const CLOSE_TIMEOUT = 300;
export const KEEPALIVE = { interval: 200, timeout: 200 } as const;
/** How soon an end the library sees at once (EOF, reset) must be reported. */
export const PROMPT = 1_000;

export const rt: RuntimeTransports = currentRuntime();
export const encoder: TextEncoder = new TextEncoder();
/** One byte, one char, both ways (`TextDecoder("latin1")` is windows-1252). */
export const latin1 = (bytes: Uint8Array): string =>
  String.fromCharCode(...bytes);

// ---- bounded tests that clean up ----

/** Registers `cleanup` to run when the test ends, pass or fail, last first. */
export type Defer = (cleanup: () => unknown) => void;

/**
 * Registers a test whose body must finish within `ms`; what it deferred runs
 * afterwards, inside the test, so the sanitizers see it closed.
 */
export function faultTest(
  name: string,
  body: (defer: Defer) => Promise<void>,
  ms = 5_000,
): void {
  test(name, async () => {
    const cleanups: (() => unknown)[] = [];
    let failure: { error: unknown } | null = null;
    try {
      await within(ms, body((cleanup) => cleanups.push(cleanup)));
    } catch (error) {
      failure = { error };
    }
    for (const cleanup of cleanups.reverse()) {
      try {
        await within(5_000, Promise.resolve().then(cleanup));
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure !== null) throw failure.error;
  });
}

/** Runs `body`, returning how long it took in ms. */
export async function elapsed(body: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await body();
  return performance.now() - start;
}

/** Asserts `ms` is within [low, high). */
export function between(
  ms: number,
  low: number,
  high: number,
  what: string,
): void {
  assert.ok(
    ms >= low && ms < high,
    `${what} after ${Math.round(ms)} ms, expected ${low}-${high} ms`,
  );
}

/** `closed`, within `ms`, as `{ code, wasClean }` to compare exactly. */
export async function closedWithin(
  connection: WebSocketConnection,
  ms = PROMPT,
): Promise<{ closeCode: number; wasClean: boolean }> {
  const { closeCode, wasClean }: CloseInfo = await within(
    ms,
    connection.closed,
  );
  return { closeCode, wasClean };
}

// ---- transports that record their closing ----

/** A transport the library was given, and when it closed it. */
export interface TrackedTransport {
  /** The transport as the library sees it. */
  readonly transport: Transport;
  /** Resolves with `performance.now()` when the library called `close()`. */
  readonly closed: Promise<number>;
  /** Whether `close()` has been called. */
  readonly isClosed: boolean;
}

/**
 * The running runtime's transports, recording every transport they open or
 * accept and when it is closed: pass `runtime` as the `transport` option of
 * `serve()` or `connect()`.
 */
export class TransportLog {
  readonly runtime: RuntimeTransports;
  readonly all: TrackedTransport[] = [];
  readonly #waiting: ((tracked: TrackedTransport) => void)[] = [];

  constructor(base: RuntimeTransports = rt) {
    this.runtime = {
      name: `${base.name} (recorded)`,
      connect: async (options) => this.#track(await base.connect(options)),
      listen: (options, onTransport) =>
        base.listen(
          options,
          (transport) => onTransport(this.#track(transport)),
        ),
    };
  }

  /** The `index`th transport, once there is one (within `ms`). */
  async nth(index: number, ms = PROMPT): Promise<TrackedTransport> {
    const deadline = performance.now() + ms;
    while (this.all.length <= index) {
      const left = deadline - performance.now();
      if (left <= 0) assert.fail(`no transport #${index} within ${ms} ms`);
      await within(
        left,
        new Promise<TrackedTransport>((resolve) => this.#waiting.push(resolve)),
      ).catch(() => {});
    }
    return this.all[index]!;
  }

  #track(transport: Transport): Transport {
    const closed = Promise.withResolvers<number>();
    let isClosed = false;
    const tracked: Transport = {
      readable: transport.readable,
      writable: transport.writable,
      localAddr: transport.localAddr,
      remoteAddr: transport.remoteAddr,
      close() {
        if (!isClosed) closed.resolve(performance.now());
        isClosed = true;
        transport.close();
      },
    };
    const entry: TrackedTransport = {
      transport: tracked,
      closed: closed.promise,
      get isClosed() {
        return isClosed;
      },
    };
    this.all.push(entry);
    for (const wake of this.#waiting.splice(0)) wake(entry);
    return tracked;
  }
}

// ---- raw peers ----

/** A byte stream whose first bytes are `head`, then what `reader` reads. */
function prepend(
  head: Uint8Array,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  transport: Transport,
): Transport {
  let first: Uint8Array | null = head.length > 0 ? head : null;
  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (first !== null) {
        controller.enqueue(first);
        first = null;
        return;
      }
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 }); // reads only when asked, like RawPeer
  return {
    readable,
    writable: transport.writable,
    close: () => transport.close(),
    localAddr: transport.localAddr,
    remoteAddr: transport.remoteAddr,
  };
}

/** Reads an HTTP head off `reader`: the head and the bytes after it. */
export async function readHttpHead(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<{ head: Uint8Array; rest: Uint8Array }> {
  const parser = new HeadParser();
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the connection ended inside an HTTP head");
    const result = parser.push(value);
    if (result) return result;
  }
}

/** Reads to the end of the stream (a reset ends it too): all that came. */
export async function readToEnd(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(value);
    }
  } catch {
    // A reset after the data: what came is what counts.
  }
  const all = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/** The status code of an HTTP response's status line. */
export function statusOf(response: Uint8Array): number {
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(latin1(response));
  assert.ok(match, `not an HTTP response: ${JSON.stringify(latin1(response))}`);
  return Number(match[1]);
}

/** A raw TCP connection to `port`, closed after the test. */
export async function rawTcp(port: number, defer: Defer): Promise<Transport> {
  const transport = await rt.connect({ hostname: HOST, port });
  defer(() => transport.close());
  return transport;
}

/** The upgrade request a raw client sends. */
export function upgradeRequest(port: number, key: string): Uint8Array {
  return encoder.encode(
    `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\n` +
      "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
}

/** A raw WebSocket end after a hand-made handshake. */
export interface RawEnd {
  /** Frames and bytes, read only when asked. */
  peer: RawPeer;
  /** The socket: `close()` drops it at once. */
  transport: Transport;
}

/**
 * A raw WebSocket client: connects to `port`, does the opening handshake by
 * hand, and from then on reads only when asked.
 */
export async function rawClient(port: number, defer: Defer): Promise<RawEnd> {
  const transport = await rawTcp(port, defer);
  const reader = transport.readable.getReader();
  const writer = transport.writable.getWriter();
  await writer.write(upgradeRequest(port, "dGhlIHNhbXBsZSBub25jZQ=="));
  const { head, rest } = await within(PROMPT, readHttpHead(reader));
  assert.equal(statusOf(head), 101);
  writer.releaseLock();
  const stream = prepend(rest, reader, transport);
  return { peer: new RawPeer(stream, "client"), transport: stream };
}

/**
 * A raw TCP listener on a free port: `script` plays the server on each
 * connection it accepts; every connection and the listener close after the
 * test.
 */
export async function rawServer(
  defer: Defer,
  script: (transport: Transport) => Promise<unknown> | unknown,
): Promise<{ port: number; url: string; done: Promise<unknown>[] }> {
  const done: Promise<unknown>[] = [];
  const listener = await rt.listen({ hostname: HOST, port: 0 }, (transport) => {
    defer(() => transport.close());
    const run = Promise.resolve().then(() => script(transport));
    run.catch(() => {}); // awaited through `done` when a test cares
    done.push(run);
  });
  defer(() => listener.close());
  const { port } = listener.addr;
  return { port, url: `ws://${HOST}:${port}/`, done };
}

/**
 * Plays the server's side of the opening handshake on `transport` by hand;
 * from then on the raw end reads only when asked.
 */
export async function acceptHandshake(transport: Transport): Promise<RawEnd> {
  const reader = transport.readable.getReader();
  const writer = transport.writable.getWriter();
  const { head, rest } = await readHttpHead(reader);
  const key = parseRequestHead(head).headers.get("sec-websocket-key") ?? "";
  await writer.write(encoder.encode(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
      `Connection: Upgrade\r\nSec-WebSocket-Accept: ${await computeAccept(
        key,
      )}\r\n\r\n`,
  ));
  writer.releaseLock();
  const stream = prepend(rest, reader, transport);
  return { peer: new RawPeer(stream, "server"), transport: stream };
}

/** Waits `ms`, so the other end has read what was written. */
export const settle = (ms = 30): Promise<void> => sleep(ms);
