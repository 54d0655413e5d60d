/**
 * Codec micro-benchmarks: frame parsing and encoding, the masking kernel,
 * UTF-8 validation and a server `Protocol` echoing small messages (the whole
 * per-message core of a connection), each timed on its own, in cache, with
 * no I/O.
 *
 * This file holds the cases (shared with `codec_bench.ts`, which registers
 * them with `Deno.bench`) and a small runner that prints GB/s and frames/s
 * for the runtime it runs on:
 *
 * ```sh
 * deno run -A bench/codec.ts          # or: deno task bench:codec (time/iter)
 * bun bench/codec.ts
 * bun bench/codec.ts mask utf8        # only cases whose name has "mask" or "utf8"
 * ```
 *
 * Each case is warmed up first, then timed in several batches of many calls;
 * the table gives the median batch. GB/s counts payload bytes (10^9 a
 * second); frame headers are not counted as bytes. Set
 * `WSSTREAM_BENCH_BATCHES` (default 21) and `WSSTREAM_BENCH_BATCH_MS`
 * (default 15) to trade time for steadier numbers.
 *
 * @module
 */

import process from "node:process";
import {
  encodeFrame,
  FrameDecoder,
  type FrameHeader,
  type FrameSink,
  Opcode,
  writeFrameHeader,
} from "../src/frame.ts";
import { applyMask } from "../src/mask.ts";
import { BYTES_COPIED, Protocol } from "../src/protocol.ts";
import { runtimeName } from "../src/runtime.ts";
import { bunTransports } from "../src/transports/bun.ts";
import { denoTransports } from "../src/transports/deno.ts";
import { decodeUtf8, Utf8Decoder } from "../src/utf8.ts";

/** One benchmarked kernel. */
export interface CodecCase {
  /** What is timed, unique among the cases. */
  readonly name: string;
  /** The kind of work, for grouping (`Deno.bench`'s `group`). */
  readonly group: "parse" | "encode" | "mask" | "utf8" | "protocol";
  /** Payload bytes one call of `run` handles, or 0 if GB/s means nothing. */
  readonly bytes: number;
  /** Frames one call of `run` handles, or 0 if frames/s means nothing. */
  readonly frames: number;
  /** Does the work once. */
  run(): void;
  /**
   * Runs the work once more and throws if it did not do what it should, so
   * a broken kernel is never timed as a fast one.
   */
  verify(): void;
}

/** Payload size of the small frames: a typical chat or game message. */
export const SMALL_PAYLOAD = 32;
/** Small frames per call: about 36 KiB of frames, well inside L2. */
export const SMALL_FRAMES = 1024;
/** Payload size of the large cases. */
export const LARGE_PAYLOAD = 64 * 1024;
/** Chunk size for the incremental UTF-8 cases: a typical socket read. */
export const UTF8_CHUNK = 4096;

/** A deterministic byte generator (xorshift32), so every run sees the same data. */
function seededBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function fail(name: string, what: string): never {
  throw new Error(`Benchmark case "${name}" did not do its work: ${what}`);
}

/** A sink that counts frames and payload bytes, and nothing more. */
class CountingSink implements FrameSink {
  frames = 0;
  bytes = 0;
  /** A byte of each payload piece, so the unmasking cannot be skipped. */
  checksum = 0;
  frameStart(_header: FrameHeader): void {}
  framePayload(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    if (chunk.length > 0) this.checksum ^= chunk[chunk.length - 1]!;
  }
  frameEnd(): void {
    this.frames++;
  }
}

/** `count` binary frames of `size` bytes back to back, masked if asked. */
function frameStream(count: number, size: number, masked: boolean): Uint8Array {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const payload = seededBytes(size, 0x9e3779b9 + i);
    const key = masked ? seededBytes(4, 0x85ebca6b + i) : null;
    frames.push(
      encodeFrame({ fin: true, rsv: 0, opcode: Opcode.Binary, payload }, key),
    );
  }
  const out = new Uint8Array(frames.reduce((sum, f) => sum + f.length, 0));
  let at = 0;
  for (const frame of frames) {
    out.set(frame, at);
    at += frame.length;
  }
  return out;
}

/**
 * Decoding `count` frames of `size` bytes from one buffer. The decoder
 * unmasks in place, so a masked buffer flips between masked and clear on
 * each call; the work is the same either way.
 */
function parseCase(
  name: string,
  count: number,
  size: number,
  masked: boolean,
): CodecCase {
  const stream = frameStream(count, size, masked);
  const sink = new CountingSink();
  const decoder = new FrameDecoder(sink, { masked });
  return {
    name,
    group: "parse",
    bytes: count * size,
    frames: count,
    run: () => decoder.push(stream),
    verify() {
      const original = stream.slice();
      const frames = sink.frames;
      const bytes = sink.bytes;
      decoder.push(stream);
      if (
        sink.frames - frames !== count || sink.bytes - bytes !== count * size
      ) {
        fail(name, `${sink.frames - frames} frames`);
      }
      if (!decoder.idle) fail(name, "a frame left partial");
      // Unmasking changed the payloads exactly when the frames were masked.
      const changed = stream.some((byte, i) => byte !== original[i]);
      if (changed !== masked) fail(name, `payloads changed: ${changed}`);
    },
  };
}

/** Writing `SMALL_FRAMES` headers into one preallocated buffer. */
function headerCase(masked: boolean): CodecCase {
  const name = `writeFrameHeader, ${SMALL_FRAMES} × ${SMALL_PAYLOAD} B, ${
    masked ? "masked" : "unmasked"
  }`;
  const key = masked ? seededBytes(4, 7) : null;
  const headerSize = masked ? 6 : 2;
  const target = new Uint8Array(SMALL_FRAMES * headerSize);
  const run = () => {
    let at = 0;
    for (let i = 0; i < SMALL_FRAMES; i++) {
      at += writeFrameHeader(
        target,
        at,
        true,
        0,
        Opcode.Binary,
        SMALL_PAYLOAD,
        key,
      );
    }
    return at;
  };
  return {
    name,
    group: "encode",
    bytes: 0,
    frames: SMALL_FRAMES,
    run,
    verify() {
      target.fill(0);
      if (run() !== target.length) fail(name, "wrong header sizes");
      const expected = [0x82, (masked ? 0x80 : 0) | SMALL_PAYLOAD];
      if (target[0] !== expected[0] || target[1] !== expected[1]) {
        fail(name, "wrong header bytes");
      }
    },
  };
}

/** `encodeFrame` on `count` payloads of `size` bytes (a new buffer each). */
function encodeCase(count: number, size: number, masked: boolean): CodecCase {
  const name = `encodeFrame, ${count === 1 ? "" : `${count} × `}${
    formatSize(size)
  }, ${masked ? "masked" : "unmasked"}`;
  const payload = seededBytes(size, 11);
  const key = masked ? seededBytes(4, 13) : null;
  const frame = { fin: true, rsv: 0, opcode: Opcode.Binary, payload };
  let last: Uint8Array = new Uint8Array(0);
  return {
    name,
    group: "encode",
    bytes: count * size,
    frames: count,
    run() {
      for (let i = 0; i < count; i++) last = encodeFrame(frame, key);
    },
    verify() {
      this.run();
      const header = last.length - size;
      if (header < 2 || last[0] !== 0x82) fail(name, "wrong header");
      const body = last.slice(header);
      if (key !== null) applyMask(body, key);
      if (body.some((byte, i) => byte !== payload[i])) {
        fail(name, "wrong payload");
      }
    },
  };
}

/**
 * `applyMask` over `count` payloads of `size` bytes, `align` bytes into
 * their buffer, masked as if starting at payload offset `offset`.
 */
function maskCase(
  count: number,
  size: number,
  align: number,
  offset: number,
): CodecCase {
  const name = `applyMask, ${count === 1 ? "" : `${count} × `}${
    formatSize(size)
  }, byteOffset ${align}, key offset ${offset}`;
  const buffer = seededBytes(align + count * size, 17);
  const views = Array.from(
    { length: count },
    (_, i) => buffer.subarray(align + i * size, align + (i + 1) * size),
  );
  const key = seededBytes(4, 19);
  return {
    name,
    group: "mask",
    bytes: count * size,
    frames: 0,
    run() {
      for (const view of views) applyMask(view, key, offset);
    },
    verify() {
      const before = buffer.slice();
      this.run();
      for (let i = 0; i < count * size; i++) {
        const expected = before[align + i]! ^ key[(offset + i % size) & 3]!;
        if (buffer[align + i] !== expected) fail(name, `byte ${i}`);
      }
    },
  };
}

/** About `size` bytes of `sample` repeated, cut at a character boundary. */
function textBytes(sample: string, size: number): Uint8Array {
  const bytes = new TextEncoder().encode(
    sample.repeat(Math.ceil(size / sample.length) + 1),
  );
  let end = size;
  while ((bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.slice(0, end);
}

/** ASCII text: JSON-like, as most text messages are. */
const ASCII_SAMPLE = '{"id":12345,"type":"update","value":"hello, world"}\n';
/** Text in many scripts: 2-, 3- and 4-byte sequences, some ASCII. */
const MULTIBYTE_SAMPLE = "κόσμε Привет мир こんにちは世界 🌍🚀 ";

/** `decodeUtf8` of a whole message. */
function decodeWholeCase(label: string, bytes: Uint8Array): CodecCase {
  const name = `decodeUtf8, ${formatSize(bytes.length)} ${label}`;
  let last = "";
  return {
    name,
    group: "utf8",
    bytes: bytes.length,
    frames: 0,
    run() {
      last = decodeUtf8(bytes);
    },
    verify() {
      this.run();
      if (last !== new TextDecoder().decode(bytes)) fail(name, "wrong text");
    },
  };
}

/** `Utf8Decoder` fed a message in `UTF8_CHUNK`-byte chunks, then `end()`. */
function decodeChunkedCase(label: string, bytes: Uint8Array): CodecCase {
  const name = `Utf8Decoder, ${formatSize(bytes.length)} ${label} in ${
    formatSize(UTF8_CHUNK)
  } chunks`;
  const decoder = new Utf8Decoder();
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += UTF8_CHUNK) {
    chunks.push(bytes.subarray(at, at + UTF8_CHUNK));
  }
  let last = "";
  return {
    name,
    group: "utf8",
    bytes: bytes.length,
    frames: 0,
    run() {
      for (const chunk of chunks) decoder.push(chunk);
      last = decoder.end();
    },
    verify() {
      this.run();
      if (last !== new TextDecoder().decode(bytes)) fail(name, "wrong text");
    },
  };
}

/** `decodeUtf8` on `SMALL_FRAMES` short messages: the per-call overhead. */
function decodeSmallCase(): CodecCase {
  const bytes = textBytes(ASCII_SAMPLE, SMALL_PAYLOAD);
  const name = `decodeUtf8, ${SMALL_FRAMES} × ${bytes.length} B ASCII`;
  let length = 0;
  return {
    name,
    group: "utf8",
    bytes: SMALL_FRAMES * bytes.length,
    frames: SMALL_FRAMES,
    run() {
      length = 0;
      for (let i = 0; i < SMALL_FRAMES; i++) length += decodeUtf8(bytes).length;
    },
    verify() {
      this.run();
      if (length !== SMALL_FRAMES * bytes.length) fail(name, "wrong length");
    },
  };
}

/**
 * A server `Protocol` receiving `SMALL_FRAMES` masked binary and as many
 * masked text frames of `SMALL_PAYLOAD` bytes, alternating, in one buffer,
 * and sending each message back from its handler; the bytes it sends are
 * counted and dropped, as by a socket that copies them. Frames, opcodes,
 * unmasking, UTF-8 and the send path: what a connection does per message
 * below its streams, with the payload buffers this runtime's transports
 * give a connection. The protocol unmasks in place, so each call first
 * copies the frames back in from a pristine copy (about 70 KB, a few µs of
 * the call's time).
 */
function protocolEchoCase(): CodecCase {
  const name =
    `Protocol echo, ${SMALL_FRAMES} binary + ${SMALL_FRAMES} text × ${SMALL_PAYLOAD} B`;
  const text = new TextEncoder().encode("0123456789abcdef".repeat(2));
  const parts: Uint8Array[] = [];
  for (let i = 0; i < SMALL_FRAMES; i++) {
    const key = seededBytes(4, 0x27d4eb2f + i);
    parts.push(encodeFrame({
      fin: true,
      rsv: 0,
      opcode: Opcode.Binary,
      payload: seededBytes(SMALL_PAYLOAD, i),
    }, key));
    parts.push(encodeFrame({
      fin: true,
      rsv: 0,
      opcode: Opcode.Text,
      payload: text.subarray(0, SMALL_PAYLOAD),
    }, key));
  }
  const pristine = new Uint8Array(parts.reduce((sum, f) => sum + f.length, 0));
  let at = 0;
  for (const part of parts) {
    pristine.set(part, at);
    at += part.length;
  }
  const input = pristine.slice();
  let messages = 0;
  let sentBytes = 0;
  let firstSent: Uint8Array | null = null;
  // The payload buffers a connection on this runtime gets (its transports').
  const buffers = runtimeName() === "bun"
    ? bunTransports.payloadBuffers
    : runtimeName() === "deno"
    ? denoTransports.payloadBuffers
    : undefined;
  const protocol: Protocol = new Protocol({ role: "server", buffers }, {
    message(data) {
      messages++;
      protocol.sendMessage(data);
    },
    ping() {},
    pong() {},
    close() {},
    send(bytes) {
      sentBytes += bytes.length;
      firstSent ??= bytes.slice();
      return BYTES_COPIED;
    },
  });
  const run = () => {
    input.set(pristine);
    protocol.receive(input);
  };
  return {
    name,
    group: "protocol",
    bytes: 2 * SMALL_FRAMES * SMALL_PAYLOAD,
    frames: 2 * SMALL_FRAMES,
    run,
    verify() {
      const before = messages;
      const sentBefore = sentBytes;
      run();
      if (messages - before !== 2 * SMALL_FRAMES) {
        fail(name, `${messages - before} messages`);
      }
      // Unmasked server frames: a 2-byte header and the payload, each.
      if (sentBytes - sentBefore !== 2 * SMALL_FRAMES * (2 + SMALL_PAYLOAD)) {
        fail(name, `${sentBytes - sentBefore} bytes sent`);
      }
      if (protocol.state !== "open") fail(name, `state ${protocol.state}`);
      // The first echo: the first binary message, unmasked, as it was sent.
      const expected = [0x82, SMALL_PAYLOAD, ...seededBytes(SMALL_PAYLOAD, 0)];
      const first: Uint8Array = firstSent ?? new Uint8Array(0);
      if (first.join() !== expected.join()) fail(name, "wrong echo bytes");
    },
  };
}

/**
 * Makes every codec benchmark case, with its input ready.
 *
 * @returns The cases, grouped: parse, encode, mask, utf8, protocol.
 */
export function codecCases(): CodecCase[] {
  const ascii = textBytes(ASCII_SAMPLE, LARGE_PAYLOAD);
  const multibyte = textBytes(MULTIBYTE_SAMPLE, LARGE_PAYLOAD);
  const small = `${SMALL_FRAMES} × ${SMALL_PAYLOAD} B`;
  return [
    parseCase(
      `FrameDecoder, ${small}, unmasked`,
      SMALL_FRAMES,
      SMALL_PAYLOAD,
      false,
    ),
    parseCase(
      `FrameDecoder, ${small}, masked`,
      SMALL_FRAMES,
      SMALL_PAYLOAD,
      true,
    ),
    parseCase(`FrameDecoder, 64 KiB, unmasked`, 1, LARGE_PAYLOAD, false),
    parseCase(`FrameDecoder, 64 KiB, masked`, 1, LARGE_PAYLOAD, true),
    headerCase(false),
    headerCase(true),
    encodeCase(SMALL_FRAMES, SMALL_PAYLOAD, false),
    encodeCase(SMALL_FRAMES, SMALL_PAYLOAD, true),
    encodeCase(1, LARGE_PAYLOAD, false),
    encodeCase(1, LARGE_PAYLOAD, true),
    maskCase(1, LARGE_PAYLOAD, 0, 0),
    maskCase(1, LARGE_PAYLOAD, 1, 3),
    maskCase(SMALL_FRAMES, SMALL_PAYLOAD, 0, 0),
    decodeWholeCase("ASCII", ascii),
    decodeWholeCase("multi-byte", multibyte),
    decodeChunkedCase("ASCII", ascii),
    decodeChunkedCase("multi-byte", multibyte),
    decodeSmallCase(),
    protocolEchoCase(),
  ];
}

/** One case's timing. */
export interface Measurement {
  /** The case's name. */
  name: string;
  /** Median nanoseconds per call of `run`. */
  nsPerRun: number;
  /** Payload GB/s (10^9 bytes a second), or null for cases without bytes. */
  gbPerSecond: number | null;
  /** Frames a second, or null for cases without frames. */
  framesPerSecond: number | null;
}

/** How long to measure. */
export interface MeasureOptions {
  /** Milliseconds of warm-up, which also sizes the batches. */
  warmupMs: number;
  /** Milliseconds each timed batch should take. */
  batchMs: number;
  /** Timed batches; the median is reported. */
  batches: number;
}

/**
 * Times one case: warm-up, then `batches` timed batches; reports the median.
 *
 * @param codecCase The case.
 * @param options How long to measure.
 * @returns The median time per call, and the rates it gives.
 */
export function measure(
  codecCase: CodecCase,
  options: MeasureOptions,
): Measurement {
  codecCase.verify();
  let calls = 0;
  const warmupStart = performance.now();
  let elapsed = 0;
  while (elapsed < options.warmupMs) {
    codecCase.run();
    calls++;
    elapsed = performance.now() - warmupStart;
  }
  const perBatch = Math.max(1, Math.round(calls * options.batchMs / elapsed));
  const samples: number[] = [];
  for (let batch = 0; batch < options.batches; batch++) {
    const start = performance.now();
    for (let i = 0; i < perBatch; i++) codecCase.run();
    samples.push((performance.now() - start) * 1e6 / perBatch);
  }
  samples.sort((a, b) => a - b);
  const nsPerRun = samples[samples.length >> 1]!;
  return {
    name: codecCase.name,
    nsPerRun,
    gbPerSecond: codecCase.bytes > 0 ? codecCase.bytes / nsPerRun : null,
    framesPerSecond: codecCase.frames > 0
      ? codecCase.frames * 1e9 / nsPerRun
      : null,
  };
}

function formatSize(bytes: number): string {
  return bytes >= 1024 && bytes % 1024 === 0
    ? `${bytes / 1024} KiB`
    : `${bytes} B`;
}

function formatTime(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(1)} ns`;
}

function formatRate(perSecond: number | null): string {
  if (perSecond === null) return "-";
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M`;
  return `${(perSecond / 1e3).toFixed(1)} k`;
}

/**
 * Formats measurements as a Markdown table.
 *
 * @param runtime The runtime's name and version, for the heading.
 * @param measurements The rows.
 * @returns The table's lines.
 */
export function formatTable(
  runtime: string,
  measurements: readonly Measurement[],
): string {
  const rows = [
    [`case (${runtime})`, "time/iter", "GB/s", "frames/s"],
    ...measurements.map((m) => [
      m.name,
      formatTime(m.nsPerRun),
      m.gbPerSecond === null ? "-" : m.gbPerSecond.toFixed(2),
      formatRate(m.framesPerSecond),
    ]),
  ];
  const widths = rows[0]!.map((_, c) =>
    Math.max(...rows.map((row) => row[c]!.length))
  );
  const line = (row: string[]) =>
    `| ${
      row.map((cell, c) =>
        c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)
      ).join(" | ")
    } |`;
  const rule = `| ${
    widths.map((w, c) => c === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)
      .join(" | ")
  } |`;
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join("\n");
}

function describeRuntime(): string {
  const versions = process.versions as Record<string, string | undefined>;
  const name = runtimeName();
  const version = versions[name] ?? "";
  return `${
    name === "bun" ? "Bun" : name === "deno" ? "Deno" : name
  } ${version}`
    .trim();
}

function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

if (import.meta.main) {
  const filters = process.argv.slice(2);
  const cases = codecCases().filter((c) =>
    filters.length === 0 || filters.some((f) => c.name.includes(f))
  );
  const batchMs = envNumber("WSSTREAM_BENCH_BATCH_MS", 15);
  const options: MeasureOptions = {
    warmupMs: batchMs * 5,
    batchMs,
    batches: Math.round(envNumber("WSSTREAM_BENCH_BATCHES", 21)),
  };
  const measurements = cases.map((c) => measure(c, options));
  console.log(formatTable(describeRuntime(), measurements));
}
