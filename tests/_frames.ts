/**
 * Shared helpers for the codec and protocol tests: a seeded PRNG, hex
 * literals, a {@link FrameSink} that collects whole frames, a
 * {@link ProtocolHandler} that records everything, and feeders that run one
 * input through a fresh decoder or protocol every way it can be chunked
 * (whole, split in two at every byte offset, and one byte at a time) and
 * check that every way gives the same result.
 *
 * Decoders and protocols unmask in place, so the feeders always work on a
 * fresh copy of the input; callers may reuse their fixtures.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ProtocolError } from "../src/errors.ts";
import {
  encodeFrame,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameHeader,
  type FrameSink,
} from "../src/frame.ts";
import {
  type Message,
  Protocol,
  type ProtocolHandler,
  type ProtocolOptions,
  type ProtocolState,
  type Role,
} from "../src/protocol.ts";

// ---------------------------------------------------------------------------
// Randomness and bytes

/** A small deterministic PRNG (mulberry32), so fuzz failures reproduce. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random integer from `min` to `max`, both included. */
export function randomInt(
  random: () => number,
  min: number,
  max: number,
): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** `length` random bytes. */
export function randomBytes(random: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (random() * 256) | 0;
  return out;
}

/** One element of `items`, at random. */
export function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** Bytes from hex, ignoring whitespace: `hex("81 05 48 65")`. */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, "");
  assert.equal(digits.length % 2, 0, `odd hex literal: ${text}`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) {
    const byte = Number.parseInt(digits.slice(2 * i, 2 * i + 2), 16);
    assert.ok(!Number.isNaN(byte), `bad hex literal: ${text}`);
    out[i] = byte;
  }
  return out;
}

/** Bytes as spaced hex, for readable failures: `"81 05 48 65"`. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** Joins byte arrays into one new array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatAll(parts);
}

/** Joins an array of byte arrays (of any count: no spread) into one new array. */
export function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!.slice();
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Whether two byte arrays hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Asserts equal bytes, showing hex for small arrays and the first difference for big ones. */
export function assertBytes(
  actual: Uint8Array,
  expected: Uint8Array,
  message = "",
): void {
  if (equalBytes(actual, expected)) return;
  if (actual.length <= 64 && expected.length <= 64) {
    assert.equal(toHex(actual), toHex(expected), message);
  }
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  assert.fail(
    `${message} bytes differ: lengths ${actual.length} and ${expected.length}, first difference at ${i}`,
  );
}

/**
 * The masking key every client {@link Protocol} in the tests uses: RFC 6455
 * §5.7's, so a client's pong to "Hello" is the RFC's masked pong.
 */
export const OUR_KEY: Uint8Array = hex("37 fa 21 3d");
/** The masking key of frames the tests make as a client peer would. */
export const PEER_KEY: Uint8Array = hex("a1 b2 c3 d4");

// ---------------------------------------------------------------------------
// Chunking

/** How one way of feeding an input cuts it: the offsets where chunks end. */
export interface Chunking {
  /** For failure messages: "whole", "split at 7", "1-byte chunks". */
  name: string;
  /** Offsets strictly inside or at the ends of the input where a chunk ends. */
  cuts: number[];
}

/**
 * Inputs up to this size are split at every byte offset. Above it, doing so
 * costs O(n²) (a 64 KiB frame would take 2^32 byte operations per runtime),
 * so larger inputs are split at every offset in their first and last 128
 * bytes (where headers, the first payload bytes and frame ends are) and at
 * 256 spread-out offsets covering every alignment modulo 8.
 */
export const EXHAUSTIVE_SPLIT_LIMIT = 4096;

/** The offsets at which an input of `length` bytes is split in two. */
export function splitOffsets(length: number): number[] {
  const offsets = new Set<number>();
  if (length <= EXHAUSTIVE_SPLIT_LIMIT) {
    for (let p = 0; p <= length; p++) offsets.add(p);
  } else {
    for (let p = 0; p <= 128; p++) offsets.add(p);
    for (let p = length - 128; p <= length; p++) offsets.add(p);
    for (let k = 0; k < 256; k++) {
      offsets.add(Math.min(length, Math.floor((k * length) / 256) + (k & 7)));
    }
  }
  return [...offsets].sort((a, b) => a - b);
}

/**
 * Every way the tests feed an input of `length` bytes: whole, split in two
 * at each offset of {@link splitOffsets} (0 and `length` included, so an
 * empty chunk is fed too), and one byte at a time.
 */
export function chunkings(length: number): Chunking[] {
  const ways: Chunking[] = [{ name: "whole", cuts: [] }];
  for (const p of splitOffsets(length)) {
    ways.push({ name: `split at ${p}`, cuts: [p] });
  }
  const bytes: number[] = [];
  for (let p = 1; p < length; p++) bytes.push(p);
  ways.push({ name: "1-byte chunks", cuts: bytes });
  return ways;
}

/**
 * Cuts a fresh copy of `input` into chunks (subarrays of the copy, so they
 * start at every alignment) with their start offsets.
 */
export function cut(
  input: Uint8Array,
  cuts: readonly number[],
): { start: number; chunk: Uint8Array }[] {
  const copy = input.slice();
  const chunks: { start: number; chunk: Uint8Array }[] = [];
  let start = 0;
  for (const end of [...cuts, input.length]) {
    chunks.push({ start, chunk: copy.subarray(start, end) });
    start = end;
  }
  return chunks;
}

/** The input offsets `[start, end)` of the chunk a failure was thrown in. */
interface ThrownIn {
  start: number;
  end: number;
}

/**
 * Checks that every way threw in a chunk containing the byte that the
 * 1-byte way threw at, and returns that byte's offset: the first byte after
 * which the input could no longer be valid.
 */
function errorByte(
  results: { name: string; thrownIn: ThrownIn | null }[],
): number | null {
  const bytewise = results[results.length - 1]!;
  if (bytewise.thrownIn === null) return null;
  const byte = bytewise.thrownIn.start;
  for (const { name, thrownIn } of results) {
    assert.ok(thrownIn !== null, `${name}: did not throw`);
    assert.ok(
      thrownIn.start <= byte && byte < thrownIn.end,
      `${name}: threw in the chunk [${thrownIn.start}, ${thrownIn.end}), which does not hold byte ${byte}`,
    );
  }
  return byte;
}

// ---------------------------------------------------------------------------
// FrameDecoder

/** A whole frame as a {@link FrameCollector} saw it. */
export interface DecodedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  length: number;
  payload: Uint8Array;
}

/**
 * A {@link FrameSink} that checks the call order (start, payload pieces,
 * end) and collects whole frames.
 */
export class FrameCollector implements FrameSink {
  /** The frames completed so far. */
  readonly frames: DecodedFrame[] = [];
  /** The header of the frame in progress, copied, or `null`. */
  current: FrameHeader | null = null;
  /** Payload pieces of the frame in progress, as given (views of the input). */
  pieces: Uint8Array[] = [];

  frameStart(header: FrameHeader): void {
    assert.equal(this.current, null, "frameStart inside a frame");
    this.current = { ...header };
    this.pieces = [];
  }

  framePayload(chunk: Uint8Array): void {
    // Called once per byte for 1-byte chunks: no assert() on this path.
    if (this.current === null) throw new Error("framePayload outside a frame");
    this.pieces.push(chunk);
  }

  frameEnd(): void {
    const header = this.current;
    assert.ok(header !== null, "frameEnd outside a frame");
    const payload = concatAll(this.pieces);
    assert.equal(payload.length, header.length, "payload length != header");
    this.frames.push({ ...header, payload });
    this.current = null;
    this.pieces = [];
  }
}

/** What feeding one input to a fresh {@link FrameDecoder} gave. */
export interface DecodeResult {
  /** The frames completed before the end or the failure. */
  frames: DecodedFrame[];
  /** The header of a frame started but not finished, if any. */
  partial: FrameHeader | null;
  /** The decoder's `idle` at the end. */
  idle: boolean;
  /** The `ProtocolError` thrown, if any. */
  error: ProtocolError | null;
}

/** Feeds `input`, cut as given, to a fresh decoder. */
export function decodeOnce(
  input: Uint8Array,
  options: FrameDecoderOptions,
  cuts: readonly number[] = [],
): DecodeResult & { thrownIn: ThrownIn | null } {
  const sink = new FrameCollector();
  const decoder = new FrameDecoder(sink, options);
  for (const { start, chunk } of cut(input, cuts)) {
    try {
      decoder.push(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return {
        frames: sink.frames,
        partial: sink.current,
        idle: decoder.idle,
        error,
        thrownIn: { start, end: start + chunk.length },
      };
    }
  }
  return {
    frames: sink.frames,
    partial: sink.current,
    idle: decoder.idle,
    error: null,
    thrownIn: null,
  };
}

function assertSameFrames(
  actual: DecodedFrame[],
  expected: DecodedFrame[],
  label: string,
): void {
  assert.equal(actual.length, expected.length, `${label}: frame count`);
  for (let i = 0; i < expected.length; i++) {
    const { payload: a, ...aHeader } = actual[i]!;
    const { payload: e, ...eHeader } = expected[i]!;
    assert.deepEqual(aHeader, eHeader, `${label}: frame ${i} header`);
    assertBytes(a, e, `${label}: frame ${i} payload`);
  }
}

/**
 * Feeds `input` to a fresh decoder every way of {@link chunkings}, asserts
 * that every way gives the same frames, partial frame, idleness and error
 * (same close code and message), and returns the result with `errorByte`:
 * the input offset of the byte at which the decoder failed (every way threw
 * in the chunk holding it).
 */
export function decodeEveryWay(
  input: Uint8Array,
  options: FrameDecoderOptions = {},
): DecodeResult & { errorByte: number | null } {
  const results = chunkings(input.length).map(({ name, cuts }) => ({
    name,
    ...decodeOnce(input, options, cuts),
  }));
  const first = results[0]!;
  for (const result of results) {
    const label = result.name;
    assertSameFrames(result.frames, first.frames, label);
    assert.deepEqual(result.partial, first.partial, `${label}: partial frame`);
    assert.equal(result.idle, first.idle, `${label}: idle`);
    assert.equal(
      result.error?.closeCode,
      first.error?.closeCode,
      `${label}: close code`,
    );
    assert.equal(
      result.error?.message,
      first.error?.message,
      `${label}: error`,
    );
  }
  return {
    frames: first.frames,
    partial: first.partial,
    idle: first.idle,
    error: first.error,
    errorByte: errorByte(results),
  };
}

/**
 * Asserts that every way of feeding `input` fails with a `ProtocolError`
 * carrying `closeCode`, thrown in the chunk holding the last byte (a bad
 * header is refused as soon as it is complete), and returns the frames
 * decoded before the failure.
 */
export function assertDecodeRejects(
  input: Uint8Array,
  options: FrameDecoderOptions,
  closeCode: number,
  message?: RegExp,
): DecodedFrame[] {
  const result = decodeEveryWay(input, options);
  assert.ok(
    result.error !== null,
    `accepted: ${toHex(input.subarray(0, 32))}`,
  );
  assert.equal(result.error.closeCode, closeCode, result.error.message);
  if (message) assert.match(result.error.message, message);
  assert.equal(result.errorByte, input.length - 1, "failed at the wrong byte");
  return result.frames;
}

// ---------------------------------------------------------------------------
// Protocol

/** One thing a {@link Protocol} reported, in order. */
export type ProtocolEvent =
  | ["message", Message]
  | ["ping", Uint8Array]
  | ["pong", Uint8Array]
  | ["close", number, string]
  | ["send", Uint8Array];

/** A {@link ProtocolHandler} that records every call. */
export class Recorder implements ProtocolHandler {
  /** Every call, in order; `send`s copied, as they were at the call. */
  readonly log: ProtocolEvent[] = [];
  /** The arrays given to `send`, uncopied. */
  readonly sends: Uint8Array[] = [];

  message(data: Message): void {
    this.log.push(["message", data]);
  }
  ping(payload: Uint8Array): void {
    this.log.push(["ping", payload]);
  }
  pong(payload: Uint8Array): void {
    this.log.push(["pong", payload]);
  }
  close(code: number, reason: string): void {
    this.log.push(["close", code, reason]);
  }
  send(bytes: Uint8Array): void {
    assert.ok(bytes.length > 0, "send called with no bytes");
    this.sends.push(bytes);
    this.log.push(["send", bytes.slice()]);
  }

  /** The events other than `send`. */
  events(): ProtocolEvent[] {
    return this.log.filter((event) => event[0] !== "send");
  }

  /** Everything sent, as one array. */
  sent(): Uint8Array {
    return concatAll(this.sends);
  }

  /** Forgets what was recorded so far. */
  clear(): void {
    this.log.length = 0;
    this.sends.length = 0;
  }
}

/** A {@link Protocol} with a {@link Recorder}; a client masks with {@link OUR_KEY}. */
export function makeProtocol(
  role: Role,
  options: Partial<Omit<ProtocolOptions, "role">> = {},
): { protocol: Protocol; recorder: Recorder } {
  const recorder = new Recorder();
  const protocol = new Protocol(
    { maskSource: () => OUR_KEY.slice(), ...options, role },
    recorder,
  );
  return { protocol, recorder };
}

/**
 * A frame as the peer of `role` sends it: masked with {@link PEER_KEY} when
 * the peer is a client (we are the server), unmasked otherwise.
 */
export function peerFrame(
  role: Role,
  opcode: number,
  payload: Uint8Array | string = new Uint8Array(0),
  fin = true,
): Uint8Array {
  const bytes = typeof payload === "string"
    ? new TextEncoder().encode(payload)
    : payload;
  return encodeFrame(
    { fin, rsv: 0, opcode, payload: bytes },
    role === "server" ? PEER_KEY : null,
  );
}

/**
 * The exact bytes a `role` {@link Protocol} made by {@link makeProtocol}
 * sends for a frame: masked with {@link OUR_KEY} by a client.
 */
export function ourFrame(
  role: Role,
  opcode: number,
  payload: Uint8Array | string = new Uint8Array(0),
  fin = true,
): Uint8Array {
  const bytes = typeof payload === "string"
    ? new TextEncoder().encode(payload)
    : payload;
  return encodeFrame(
    { fin, rsv: 0, opcode, payload: bytes },
    role === "client" ? OUR_KEY : null,
  );
}

/** What feeding one input to a fresh {@link Protocol} gave. */
export interface ReceiveResult {
  /** Everything reported, sends included, in order. */
  log: ProtocolEvent[];
  /** The `ProtocolError` thrown, if any. */
  error: ProtocolError | null;
  state: ProtocolState;
  closeReceived: boolean;
  closeSent: boolean;
}

/** Feeds `input`, cut as given, to a fresh protocol. */
export function receiveOnce(
  role: Role,
  input: Uint8Array,
  options: Partial<Omit<ProtocolOptions, "role">> = {},
  cuts: readonly number[] = [],
): ReceiveResult & { thrownIn: ThrownIn | null } {
  const { protocol, recorder } = makeProtocol(role, options);
  let error: ProtocolError | null = null;
  let thrownIn: ThrownIn | null = null;
  for (const { start, chunk } of cut(input, cuts)) {
    try {
      protocol.receive(chunk);
    } catch (caught) {
      if (!(caught instanceof ProtocolError)) throw caught;
      assert.equal(error, null, "threw twice");
      assert.equal(protocol.failure, caught, "failure is not the error thrown");
      // The close frame waits for the driver's fail(): until then the
      // application may still answer what arrived before the violation.
      const closes = recorder.log.filter((event) =>
        event[0] === "send" && event[1][0] === 0x88
      ).length;
      assert.equal(closes, protocol.closeSent ? 1 : 0, "closed before fail()");
      protocol.fail();
      error = caught;
      thrownIn = { start, end: start + chunk.length };
      // Keep feeding: a failed protocol must ignore everything after.
    }
  }
  return {
    log: recorder.log,
    error,
    state: protocol.state,
    closeReceived: protocol.closeReceived,
    closeSent: protocol.closeSent,
    thrownIn,
  };
}

/**
 * Feeds `input` to a fresh `role` protocol every way of {@link chunkings},
 * asserts that every way reports the same events and sends the same bytes in
 * the same order, ends in the same state and fails with the same close code
 * at the same byte, and returns
 * the result with `errorByte` (see {@link decodeEveryWay}).
 */
export function receiveEveryWay(
  role: Role,
  input: Uint8Array,
  options: Partial<Omit<ProtocolOptions, "role">> = {},
): ReceiveResult & { errorByte: number | null } {
  const results = chunkings(input.length).map(({ name, cuts }) => ({
    name,
    ...receiveOnce(role, input, options, cuts),
  }));
  const first = results[0]!;
  for (const result of results) {
    const label = `${role}, ${result.name}`;
    assert.deepEqual(result.log, first.log, `${label}: events`);
    assert.equal(
      result.error?.closeCode,
      first.error?.closeCode,
      `${label}: close code`,
    );
    // Only the close code must match: a text message that arrived in one
    // chunk is decoded in one call, which cannot tell "ends inside a
    // character" from other invalid UTF-8, so the messages may differ.
    assert.equal(result.state, first.state, `${label}: state`);
    assert.equal(result.closeReceived, first.closeReceived, label);
    assert.equal(result.closeSent, first.closeSent, label);
  }
  const { name: _, thrownIn: __, ...result } = first;
  return { ...result, errorByte: errorByte(results) };
}
