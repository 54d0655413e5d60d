/**
 * The load generator: raw `Bun.connect` sockets speaking just enough
 * WebSocket to drive a server hard without being the bottleneck. Frames are
 * built (and masked) once; the parser reads frame headers and lengths only,
 * and checks every echo's length, opcode and order (and the first echo's
 * bytes on each connection). Any protocol error fails the run.
 *
 * Run with Bun (bench/main.ts pins it to its own core):
 *
 * ```sh
 * bun bench/loadgen.ts --mode echo --port 9001 --conns 64 --inflight 64 --size 32
 * bun bench/loadgen.ts --mode handshake --port 9001 --conns 32
 * bun bench/loadgen.ts --mode idle --port 9001 --conns 10000 --pid 1234
 * bun bench/loadgen.ts --mode echo --raw --port 9002 ...  # against raw_echo.ts
 * ```
 *
 * Prints one `RESULT {json}` line.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import { type BunSocket, requireBun } from "./_bun_api.ts";
import {
  CpuMeter,
  fail,
  LatencyHistogram,
  MeasureWindow,
  printResult,
  randomPayload,
  readOptions,
  TimestampRing,
} from "./_stats.mjs";

const options = readOptions({
  mode: "echo", // echo | handshake | idle
  host: "127.0.0.1",
  port: 0,
  conns: 64,
  inflight: 64,
  size: 32,
  warmup: 1,
  seconds: 3,
  pid: 0, // the server process: its CPU use, and (idle) its resident memory
  warm: 3000, // idle: handshakes before the measurement (see idle())
  raw: false, // the peer is a byte echo: no handshake, frames come back masked
  // echo: the warm-up lasts until this many messages were echoed too (tp16m:
  // a fresh Deno.serve is page-fault-bound for its first tens of 16 MiB
  // messages, see bench/README.md, "Two load generators")
  "warmup-messages": 0,
});
if (!(options.port > 0)) fail("--port is required");

const bun = requireBun();

// ---- frames, built once ----

/** The RFC 6455 §1.3 sample key, and the accept value it must produce. */
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK = randomPayload(4);
const encoder = new TextEncoder();
const REQUEST = encoder.encode(
  `GET / HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\n` +
    "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
);

/** A masked client frame with FIN set. */
function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const frame = new Uint8Array(2 + extended + 4 + length);
  frame[0] = 0x80 | opcode;
  if (extended === 0) frame[1] = 0x80 | length;
  else if (extended === 2) {
    frame[1] = 0x80 | 126;
    frame[2] = length >>> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(length));
  }
  const at = 2 + extended;
  frame.set(MASK, at);
  for (let i = 0; i < length; i++) {
    frame[at + 4 + i] = payload[i]! ^ MASK[i & 3]!;
  }
  return frame;
}

const PAYLOAD = randomPayload(options.size);
const FRAME = clientFrame(0x2, PAYLOAD);
const FRAME_LENGTH = FRAME.length;
/** The masked payload: what a byte echo sends back. */
const MASKED_PAYLOAD = FRAME.subarray(FRAME_LENGTH - options.size);
/** What an echo's payload must equal. */
const EXPECTED = options.raw ? MASKED_PAYLOAD : PAYLOAD;
/** Up to `inflight` frames back to back (at most 4 MiB), written at once. */
const BATCH_FRAMES = Math.max(
  1,
  Math.min(options.inflight, Math.floor((4 << 20) / FRAME_LENGTH)),
);
const BATCH = new Uint8Array(BATCH_FRAMES * FRAME_LENGTH);
for (let i = 0; i < BATCH_FRAMES; i++) BATCH.set(FRAME, i * FRAME_LENGTH);
/** Close 1000, masked. */
const CLOSE_FRAME = clientFrame(0x8, new Uint8Array([0x03, 0xe8]));

// ---- one connection ----

/** Where a connection stands: the 101 awaited, open, our close frame sent. */
type State = "handshaking" | "open" | "closing";

/** Receives a connection's events; the mode decides what they mean. */
interface Events {
  open(connection: Connection): void;
  /** `count` whole echoes arrived in one read, at `now`. */
  echoed(connection: Connection, count: number, now: number): void;
  closeFrame(connection: Connection): void;
  closed(connection: Connection, error?: Error): void;
}

class Connection {
  state: State = "handshaking";
  socket!: BunSocket<Connection>;
  readonly ring: TimestampRing;
  readonly #events: Events;
  readonly #queue: Uint8Array[] = [];
  #head: Uint8Array | null = null;
  // The frame parser: a partial header, and what is left of the payload.
  readonly #header = new Uint8Array(14);
  #headerLength = 0;
  #remaining = 0;
  #opcode = 0;
  #fin = false;
  /** Bytes of the current message so far; -1 between messages. */
  #messageLength = -1;
  /** Whether this message's bytes are compared (the first one only). */
  #verifying = true;
  /** Sent but not yet echoed, over the connection's life. */
  outstanding = 0;
  startedAt = performance.now();
  /** A socket error, reported with the close that follows it. */
  error: Error | undefined;
  #ended = Promise.withResolvers<void>();
  /** Resolves once the socket closed. */
  readonly ended = this.#ended.promise;

  constructor(events: Events, capacity: number) {
    this.#events = events;
    this.ring = new TimestampRing(Math.max(1, capacity));
  }

  /** Writes, queueing what the kernel does not take until `drain`. */
  write(bytes: Uint8Array): void {
    if (this.#queue.length > 0) {
      this.#queue.push(bytes);
      return;
    }
    const written = this.socket.write(bytes);
    if (written < 0) fail("Write to a closed socket");
    if (written < bytes.length) this.#queue.push(bytes.subarray(written));
  }

  drain(): void {
    while (this.#queue.length > 0) {
      const bytes = this.#queue[0]!;
      const written = this.socket.write(bytes);
      if (written < 0) return;
      if (written < bytes.length) {
        this.#queue[0] = bytes.subarray(written);
        return;
      }
      this.#queue.shift();
    }
  }

  /** Sends `count` data frames. */
  sendFrames(count: number): void {
    this.outstanding += count;
    while (count > 0) {
      const frames = Math.min(count, BATCH_FRAMES);
      this.write(BATCH.subarray(0, frames * FRAME_LENGTH));
      count -= frames;
    }
  }

  sendClose(): void {
    this.state = "closing";
    this.write(CLOSE_FRAME);
  }

  receive(bytes: Uint8Array): void {
    if (this.state === "handshaking") {
      const rest = this.#readHandshake(bytes);
      if (rest === null) return;
      bytes = rest;
    }
    const echoed = this.#parse(bytes);
    if (echoed > 0) this.#events.echoed(this, echoed, performance.now());
  }

  /** Collects the 101 response; returns the bytes after it, once complete. */
  #readHandshake(bytes: Uint8Array): Uint8Array | null {
    let head = bytes;
    if (this.#head !== null) {
      head = new Uint8Array(this.#head.length + bytes.length);
      head.set(this.#head);
      head.set(bytes, this.#head.length);
    }
    const end = indexOfHeadEnd(head);
    if (end < 0) {
      if (head.length > 8192) fail("Handshake response head over 8 KiB");
      this.#head = head.slice();
      return null;
    }
    this.#head = null;
    const text = new TextDecoder("latin1").decode(head.subarray(0, end));
    if (!text.startsWith("HTTP/1.1 101")) {
      fail(`Handshake refused: ${text.split("\r\n")[0]}`);
    }
    const accept = /\r\nsec-websocket-accept:[ \t]*([^\r\n]*?)[ \t]*(\r\n|$)/i
      .exec(text)?.[1];
    if (accept !== ACCEPT) fail(`Bad Sec-WebSocket-Accept: ${accept}`);
    this.state = "open";
    this.#events.open(this);
    return head.subarray(end + 4);
  }

  /** Parses frames; returns how many whole data messages ended here. */
  #parse(bytes: Uint8Array): number {
    let echoed = 0;
    let at = 0;
    const length = bytes.length;
    while (at < length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, length - at);
        if (this.#verifying && this.#messageLength >= 0) {
          this.#verify(bytes, at, take);
        }
        at += take;
        this.#remaining -= take;
        if (this.#messageLength >= 0) this.#messageLength += take;
        if (this.#remaining === 0 && this.#frameEnd()) echoed++;
        continue;
      }
      // A frame header: straight from the chunk when it is all there.
      let b1: number, size: number;
      let view: Uint8Array, base: number;
      if (this.#headerLength === 0 && length - at >= 2) {
        view = bytes;
        base = at;
        b1 = bytes[at + 1]!;
        size = headerSize(b1);
        if (length - at < size) {
          this.#header.set(bytes.subarray(at, length));
          this.#headerLength = length - at;
          break;
        }
        at += size;
      } else {
        const need = this.#headerLength < 2 ? 2 : headerSize(this.#header[1]!);
        const take = Math.min(need - this.#headerLength, length - at);
        this.#header.set(bytes.subarray(at, at + take), this.#headerLength);
        this.#headerLength += take;
        at += take;
        if (this.#headerLength < 2) continue;
        size = headerSize(this.#header[1]!);
        if (this.#headerLength < size) continue;
        view = this.#header;
        base = 0;
        b1 = view[1]!;
        this.#headerLength = 0;
      }
      const b0 = view[base]!;
      let payloadLength = b1 & 0x7f;
      if (payloadLength === 126) {
        payloadLength = (view[base + 2]! << 8) | view[base + 3]!;
      } else if (payloadLength === 127) {
        payloadLength = Number(
          new DataView(view.buffer, view.byteOffset + base + 2, 8)
            .getBigUint64(0),
        );
      }
      this.#startFrame(b0, (b1 & 0x80) !== 0, payloadLength);
      if (payloadLength === 0 && this.#frameEnd()) echoed++;
      this.#remaining = payloadLength;
    }
    return echoed;
  }

  #startFrame(b0: number, masked: boolean, payloadLength: number): void {
    if (masked !== options.raw) {
      fail(
        options.raw
          ? "An unmasked frame from a byte echo"
          : "A masked frame from the server (RFC 6455 §5.1)",
      );
    }
    if ((b0 & 0x70) !== 0) fail(`Reserved bits set: 0x${b0.toString(16)}`);
    this.#fin = (b0 & 0x80) !== 0;
    this.#opcode = b0 & 0x0f;
    switch (this.#opcode) {
      case 0x2:
        if (this.#messageLength >= 0) fail("A new message inside a message");
        this.#messageLength = 0;
        break;
      case 0x0:
        if (this.#messageLength < 0) fail("A continuation with no message");
        break;
      case 0x8:
        if (this.state !== "closing") {
          fail("The server closed the connection during the measurement");
        }
        break;
      case 0x9: // a ping: its pong is not needed within a run
      case 0xa:
        if (payloadLength > 125 || !this.#fin) fail("A bad control frame");
        break;
      default:
        fail(`Unexpected opcode 0x${this.#opcode.toString(16)}`);
    }
  }

  /** A frame's payload is complete; true when it ended a data message. */
  #frameEnd(): boolean {
    if (this.#opcode === 0x8) {
      this.#events.closeFrame(this);
      return false;
    }
    if (this.#opcode >= 0x8 || !this.#fin) return false;
    if (this.#messageLength !== options.size) {
      fail(
        `An echo of ${this.#messageLength} bytes; ${options.size} were sent`,
      );
    }
    this.#messageLength = -1;
    this.#verifying = false;
    if (this.outstanding === 0) fail("An echo of a message never sent");
    this.outstanding--;
    return true;
  }

  #verify(bytes: Uint8Array, at: number, take: number): void {
    const offset = this.#messageLength;
    for (let i = 0; i < take; i++) {
      if (bytes[at + i] !== EXPECTED[offset + i]) {
        fail(`The echo differs from the message at byte ${offset + i}`);
      }
    }
  }

  closed(error?: Error): void {
    this.#ended.resolve();
    this.#events.closed(this, error);
  }
}

/** Header bytes (2 to 14) given a frame's second byte. */
function headerSize(b1: number): number {
  const length = b1 & 0x7f;
  return 2 + (length === 126 ? 2 : length === 127 ? 8 : 0) +
    ((b1 & 0x80) !== 0 ? 4 : 0);
}

function indexOfHeadEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (
      bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 &&
      bytes[i + 3] === 10
    ) return i;
  }
  return -1;
}

const handlers = {
  binaryType: "uint8array" as const,
  data: (socket: BunSocket<Connection>, bytes: Uint8Array) =>
    socket.data.receive(bytes),
  drain: (socket: BunSocket<Connection>) => socket.data.drain(),
  close: (socket: BunSocket<Connection>, error?: Error) =>
    socket.data.closed(error ?? socket.data.error),
  error: (socket: BunSocket<Connection>, error: Error) =>
    void (socket.data.error = error),
};

/** Connects (the 101 arrives later, through `events.open`). */
async function open(events: Events, capacity: number): Promise<Connection> {
  const connection = new Connection(events, capacity);
  connection.socket = await bun.connect<Connection>({
    hostname: options.host,
    port: options.port,
    data: connection,
    socket: handlers,
  });
  connection.socket.setNoDelay(true);
  if (options.raw) {
    connection.state = "open";
    events.open(connection);
  } else {
    connection.write(REQUEST);
  }
  return connection;
}

/** Resolves when `done()` turns true (checked every 10 ms), or rejects. */
function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (done()) return resolve();
      if (performance.now() > deadline) {
        return reject(new Error(`Timed out after ${ms} ms: ${what}`));
      }
      setTimeout(check, 10);
    };
    check();
  });
}

/** Opens `count` connections, at most `concurrency` handshakes at once. */
async function openMany(
  count: number,
  concurrency: number,
  events: Partial<Events>,
  capacity: number,
): Promise<Connection[]> {
  const connections: Connection[] = [];
  let opened = 0;
  let waiting: (() => void) | null = null;
  const all: Events = {
    open: (connection) => {
      opened++;
      events.open?.(connection);
      waiting?.();
    },
    echoed: events.echoed ?? (() => fail("An echo nobody asked for")),
    closeFrame: events.closeFrame ?? ((connection) => connection.socket.end()),
    closed: events.closed ?? ((connection, error) => {
      if (connection.state !== "closing") {
        fail(`The server dropped a connection: ${error?.message ?? "EOF"}`);
      }
    }),
  };
  while (connections.length < count) {
    if (connections.length - opened >= concurrency) {
      await new Promise<void>((resolve) => (waiting = resolve));
      waiting = null;
      continue;
    }
    connections.push(await open(all, capacity));
  }
  await until(() => opened === count, 30_000, `${count} handshakes`);
  return connections;
}

/** Sends every connection a close frame; resolves once all are closed. */
async function closeAll(connections: Connection[]): Promise<void> {
  for (const connection of connections) connection.sendClose();
  await Promise.all(connections.map((connection) => connection.ended));
}

// ---- the modes ----

/** Echo: each connection keeps `inflight` messages on the wire. */
async function echo(): Promise<void> {
  const window = new MeasureWindow(options.warmup, options.seconds);
  const histogram = new LatencyHistogram();
  let messages = 0;
  let warmEchoes = 0;
  const connections = await openMany(options.conns, options.conns, {
    echoed(connection, count, now) {
      const ring = connection.ring;
      if (window.measuring) {
        messages += count;
        for (let i = 0; i < count; i++) histogram.record(now - ring.shift());
      } else {
        warmEchoes += count;
        for (let i = 0; i < count; i++) ring.shift();
      }
      if (window.running) {
        for (let i = 0; i < count; i++) ring.push(now);
        connection.sendFrames(count);
      }
    },
  }, options.inflight);
  const start = performance.now();
  for (const connection of connections) {
    for (let i = 0; i < options.inflight; i++) connection.ring.push(start);
    connection.sendFrames(options.inflight);
  }
  const cpu = new CpuMeter(options.pid);
  await window.run(() => {
    messages = 0;
    histogram.counts.fill(0);
    histogram.total = 0;
    cpu.reset();
  }, () => warmEchoes >= options["warmup-messages"]);
  const seconds = window.elapsed();
  const cores = cpu.cores();
  // Every message sent must come back before the connections close.
  await until(
    () => connections.every((connection) => connection.outstanding === 0),
    20_000,
    "the last echoes",
  ).catch((error) => {
    const missing = connections.reduce((n, c) => n + c.outstanding, 0);
    fail(`${missing} messages never came back (${error.message})`);
  });
  await Promise.race([
    closeAll(connections),
    new Promise((resolve) => setTimeout(resolve, 3_000)),
  ]);
  printResult({
    mode: "echo",
    conns: options.conns,
    inflight: options.inflight,
    size: options.size,
    seconds,
    messages,
    msgPerSec: messages / seconds,
    mbPerSec: (messages * options.size) / seconds / 1e6,
    p50Ms: histogram.percentile(50),
    p99Ms: histogram.percentile(99),
    warmupSeconds: window.warmedFor,
    warmupMessages: warmEchoes,
    serverMinfltPerMsg: cores.serverMinflt / messages,
    ...cores,
  });
}

/**
 * Handshakes: `conns` loops of connect, upgrade, close frame, the server's
 * close frame, FIN, and the socket closed.
 */
async function handshakes(): Promise<void> {
  const window = new MeasureWindow(options.warmup, options.seconds);
  const histogram = new LatencyHistogram();
  let completed = 0;
  let errors = 0;
  let active = 0;
  const events: Events = {
    open: (connection) => connection.sendClose(),
    echoed: () => fail("A data frame in a handshake"),
    closeFrame: (connection) => connection.socket.end(),
    closed(connection, error) {
      active--;
      if (error !== undefined || connection.state !== "closing") {
        errors++;
      } else if (window.measuring) {
        completed++;
        histogram.record(performance.now() - connection.startedAt);
      }
      if (window.running) loop();
    },
  };
  const loop = () => {
    active++;
    open(events, 1).catch(() => {
      active--;
      errors++;
      if (window.running) setTimeout(loop, 1);
    });
  };
  for (let i = 0; i < options.conns; i++) loop();
  const cpu = new CpuMeter(options.pid);
  await window.run(() => {
    completed = 0;
    errors = 0;
    histogram.counts.fill(0);
    histogram.total = 0;
    cpu.reset();
  });
  const seconds = window.elapsed();
  const cores = cpu.cores();
  await until(() => active === 0, 5_000, "the last handshakes").catch(() => {});
  if (errors > completed / 100) {
    fail(`${errors} handshakes failed, ${completed} completed`);
  }
  printResult({
    mode: "handshake",
    conns: options.conns,
    seconds,
    handshakes: completed,
    errors,
    perSec: completed / seconds,
    p50Ms: histogram.percentile(50),
    p99Ms: histogram.percentile(99),
    ...cores,
  });
}

/** The resident memory of a process, in KiB. */
function residentKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) fail(`No VmRSS for process ${pid}`);
  return Number(match[1]);
}

/** Waits until the resident memory stops moving; returns it. */
async function settledResident(pid: number, maxMs: number): Promise<number> {
  const samples: number[] = [];
  const deadline = performance.now() + maxMs;
  for (;;) {
    samples.push(residentKiB(pid));
    const recent = samples.slice(-8); // 2 s
    if (recent.length === 8) {
      const spread = Math.max(...recent) - Math.min(...recent);
      if (spread <= Math.max(256, recent.at(-1)! / 200)) return recent.at(-1)!;
    }
    if (performance.now() > deadline) return samples.at(-1)!;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Connections open at once in the idle mode's warm-up. */
const WARM_BATCH = 100;

/** Idle: resident memory growth of the server per open, idle connection. */
async function idle(): Promise<void> {
  if (!(options.pid > 0)) fail("--pid (the server's) is required");
  // Warm up like a server that has run a while: its code compiled, its
  // heaps sized. Many handshakes, WARM_BATCH at a time: with few (there were
  // 200), the JIT compiler's memory during the measured handshakes counted
  // as per-connection memory (a third of ours on Bun). Few at a time: what
  // the closed connections leave free for the measured ones to reuse is at
  // most WARM_BATCH connections' worth.
  for (let done = 0; done < options.warm; done += WARM_BATCH) {
    const warm = await openMany(
      Math.min(WARM_BATCH, options.warm - done),
      WARM_BATCH,
      {},
      1,
    );
    await Promise.race([
      closeAll(warm),
      new Promise((resolve) => setTimeout(resolve, 10_000)),
    ]);
  }
  const before = await settledResident(options.pid, 10_000);
  const started = performance.now();
  const connections = await openMany(options.conns, 128, {}, 1);
  const openSeconds = (performance.now() - started) / 1000;
  const after = await settledResident(options.pid, 15_000);
  printResult({
    mode: "idle",
    conns: connections.length,
    openSeconds,
    rssBeforeKiB: before,
    rssAfterKiB: after,
    perConnKiB: (after - before) / connections.length,
  });
  // Exiting drops the connections; the server is stopped next anyway.
}

switch (options.mode) {
  case "echo":
    await echo();
    break;
  case "handshake":
    await handshakes();
    break;
  case "idle":
    await idle();
    break;
  default:
    fail(`Unknown --mode ${options.mode}: use echo, handshake or idle`);
}
// Sockets still closing must not keep the process.
process.exit(0);
