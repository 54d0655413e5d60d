/**
 * Frame streams for the fuzzer: a valid stream (text and binary messages,
 * some fragmented, with control frames between the fragments, and often a
 * close frame), then one mutation from a catalogue, then the points where
 * the writes are cut.
 *
 * @module
 */
import { concatAll } from "../_frames.ts";
import type { FrameLimits } from "./_frame_oracle.ts";
import type { Random } from "./_random.ts";
import { encodeCodePoint, invalidUtf8, validUtf8 } from "./_utf8.ts";
import { frame, OP, type WireFrame, writeFrame, writeFrames } from "./_wire.ts";

/** The limits every fuzzed connection runs with: small, so they are reached. */
export const FUZZ_LIMITS: FrameLimits = {
  maxMessageSize: 64 * 1024,
  maxFragments: 32,
};

/**
 * What the application on our side does with each message: keeps it
 * (`collect`), sends it back (`echo`), or keeps it but reads slowly, a
 * timer turn per message (`slow`, so the queue fills and reading pauses).
 */
export type AppMode = "collect" | "echo" | "slow";

/** A stream of frame bytes to feed one of our endpoints, and how. */
export interface FrameStream {
  /** The mutation applied (a catalogue name, with detail). */
  mutation: string;
  /** The bytes the peer writes. */
  bytes: Uint8Array;
  /** The offsets at which the writes are cut. */
  cuts: number[];
}

/** The close codes a peer may send (RFC 6455 §7.4, IANA). */
const VALID_CODES = [
  1000,
  1001,
  1002,
  1003,
  1007,
  1008,
  1009,
  1010,
  1011,
  1012,
  1013,
  1014,
  3000,
  3999,
  4000,
  4999,
];
/** Codes no close frame may carry. */
const INVALID_CODES = [
  0,
  1,
  999,
  1004,
  1005,
  1006,
  1015,
  1016,
  1100,
  2000,
  2999,
  5000,
  65535,
];
const RESERVED_OPCODES = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15];

/** How the peer masks: a client masks every frame, a server none. */
type Masker = () => Uint8Array | null;

/** A payload size: mostly small, sometimes at the length-encoding edges. */
function payloadSize(random: Random, large: boolean): number {
  return random.weighted<() => number>([
    [50, () => random.int(0, 20)],
    [20, () => random.int(21, 125)],
    [10, () => random.int(126, 400)],
    [8, () => random.pick([125, 126, 127, 128, 255, 256])],
    [large ? 6 : 0, () => random.int(1000, 8000)],
    [large ? 3 : 0, () => random.pick([65535, 65536])],
  ])();
}

/** Splits `payload` into `count` fragments at random points (inside code points too). */
function split(
  random: Random,
  payload: Uint8Array,
  count: number,
): Uint8Array[] {
  const cuts = new Set<number>();
  for (let i = 1; i < count; i++) cuts.add(random.int(0, payload.length));
  const sorted = [...cuts].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const cut of sorted) {
    parts.push(payload.slice(at, cut));
    at = cut;
  }
  parts.push(payload.slice(at));
  while (parts.length < count) parts.push(new Uint8Array(0));
  return parts;
}

/** A ping or pong with a random payload of at most 125 bytes. */
function control(random: Random, mask: Masker): WireFrame {
  const payload = random.chance(0.5)
    ? random.bytes(random.int(0, 8))
    : random.bytes(random.int(0, 125));
  return frame(random.chance(0.7) ? OP.ping : OP.pong, payload, mask());
}

/** One message as frames: fragmented or not, control frames between fragments. */
function message(
  random: Random,
  opcode: number,
  payload: Uint8Array,
  mask: Masker,
  fragments = random.chance(0.6)
    ? 1
    : random.int(2, random.chance(0.8) ? 4 : 32),
): WireFrame[] {
  const frames: WireFrame[] = [];
  const parts = split(random, payload, fragments);
  parts.forEach((part, i) => {
    if (i > 0 && random.chance(0.2)) frames.push(control(random, mask));
    frames.push(
      frame(
        i === 0 ? opcode : OP.continuation,
        part,
        mask(),
        i === parts.length - 1,
      ),
    );
  });
  return frames;
}

function textPayload(random: Random, size: number): Uint8Array {
  return validUtf8(random, size);
}

/** A valid close frame: a code and a reason of up to 123 bytes, or no payload. */
function closeFrame(random: Random, mask: Masker): WireFrame {
  if (random.chance(0.1)) return frame(OP.close, new Uint8Array(0), mask());
  const code = random.pick(VALID_CODES);
  const reason = validUtf8(
    random,
    random.chance(0.5) ? random.int(0, 10) : random.int(0, 120),
  );
  return frame(OP.close, closePayload(code, reason), mask());
}

function closePayload(code: number, reason: Uint8Array): Uint8Array {
  const payload = new Uint8Array(2 + reason.length);
  payload[0] = code >> 8;
  payload[1] = code & 0xff;
  payload.set(reason, 2);
  return payload;
}

/** A valid stream: a few messages and control frames, often ending with a close. */
export function validFrames(
  random: Random,
  mask: Masker,
  options: { large: boolean; close?: boolean },
): WireFrame[] {
  const frames: WireFrame[] = [];
  const count = random.int(0, 6);
  for (let i = 0; i < count; i++) {
    const kind = random.weighted([[6, "text"], [4, "binary"], [3, "control"]]);
    if (kind === "control") {
      frames.push(control(random, mask));
      continue;
    }
    const size = payloadSize(random, options.large);
    frames.push(
      ...(kind === "text"
        ? message(random, OP.text, textPayload(random, size), mask)
        : message(random, OP.binary, random.bytes(size), mask)),
    );
  }
  if (options.close ?? random.chance(0.6)) {
    frames.push(closeFrame(random, mask));
  }
  return frames;
}

/** Indices of the frames of fragmented messages that are not the first. */
function continuations(frames: readonly WireFrame[]): number[] {
  return frames.flatMap((f, i) => (f.opcode === OP.continuation ? [i] : []));
}

/** Where a frame may go between messages (not inside a fragmented one). */
function messageBoundaries(frames: readonly WireFrame[]): number[] {
  const at: number[] = [0];
  let inMessage = false;
  frames.forEach((f, i) => {
    if (f.opcode <= 2) inMessage = !f.fin;
    if (!inMessage) at.push(i + 1);
  });
  return at;
}

type Mutation = (
  random: Random,
  frames: WireFrame[],
  mask: Masker,
  peerMasks: boolean,
) => { detail: string; bytes?: Uint8Array };

/** Makes sure there is at least one frame to mutate. */
function someFrame(random: Random, frames: WireFrame[], mask: Masker): number {
  if (frames.length === 0) {
    frames.push(...message(random, OP.text, textPayload(random, 10), mask, 1));
  }
  return random.int(0, frames.length - 1);
}

/** The catalogue: each entry breaks (or keeps) the stream in one way. */
export const MUTATIONS: readonly (readonly [string, number, Mutation])[] = [
  ["valid", 14, () => ({ detail: "" })],
  ["rsv", 4, (random, frames, mask) => {
    const i = someFrame(random, frames, mask);
    frames[i]!.rsv = random.int(1, 7);
    return { detail: `RSV ${frames[i]!.rsv} on frame ${i}` };
  }],
  ["reserved-opcode", 4, (random, frames, mask) => {
    const i = someFrame(random, frames, mask);
    frames[i]!.opcode = random.pick(RESERVED_OPCODES);
    return { detail: `opcode ${frames[i]!.opcode} on frame ${i}` };
  }],
  ["wrong-mask", 4, (random, frames, mask, peerMasks) => {
    const i = someFrame(random, frames, mask);
    frames[i]!.mask = peerMasks ? null : random.maskKey();
    return { detail: `frame ${i} ${peerMasks ? "unmasked" : "masked"}` };
  }],
  ["non-minimal-16", 2, (random, frames, mask) => {
    const i = someFrame(random, frames, mask);
    frames[i]!.lengthForm = "16";
    return { detail: `frame ${i}: ${frames[i]!.payload.length} in 16 bits` };
  }],
  ["non-minimal-64", 2, (random, frames, mask) => {
    const i = someFrame(random, frames, mask);
    frames[i]!.lengthForm = "64";
    return { detail: `frame ${i}: ${frames[i]!.payload.length} in 64 bits` };
  }],
  ["length-top-bit", 2, (random, frames, mask) => {
    const i = someFrame(random, frames, mask);
    frames[i]!.lengthForm = "64";
    frames[i]!.announced = (1n << 63n) | BigInt(frames[i]!.payload.length);
    return { detail: `frame ${i}: 64-bit length with the top bit` };
  }],
  ["huge-length", 2, (random, frames, mask) => {
    const i = someFrame(random, frames, mask);
    const length = random.pick([
      2n ** 32n,
      2n ** 40n,
      2n ** 53n,
      2n ** 53n + 1n,
      2n ** 62n,
    ]);
    frames[i]!.announced = length;
    return { detail: `frame ${i} announces ${length} bytes` };
  }],
  ["length-lie", 3, (random, frames, mask) => {
    const i = someFrame(random, frames, mask);
    const real = frames[i]!.payload.length;
    const announced = Math.max(
      0,
      real + random.pick([-3, -2, -1, 1, 2, 3, 40]),
    );
    frames[i]!.announced = announced;
    return { detail: `frame ${i} announces ${announced} of ${real} bytes` };
  }],
  ["control-too-long", 3, (random, frames, mask) => {
    const opcode = random.pick([OP.ping, OP.pong, OP.close]);
    const payload = random.bytes(random.int(126, 200));
    if (opcode === OP.close) payload.set([0x03, 0xe8]);
    const at = random.int(0, frames.length);
    frames.splice(at, 0, frame(opcode, payload, mask()));
    return { detail: `opcode ${opcode} with ${payload.length} bytes at ${at}` };
  }],
  ["control-fragmented", 3, (random, frames, mask) => {
    const opcode = random.pick([OP.ping, OP.pong, OP.close]);
    const at = random.int(0, frames.length);
    const payload = opcode === OP.close
      ? closePayload(1000, new Uint8Array(0))
      : random.bytes(3);
    frames.splice(at, 0, frame(opcode, payload, mask(), false));
    if (random.chance(0.5)) {
      frames.splice(at + 1, 0, frame(OP.continuation, random.bytes(2), mask()));
    }
    return { detail: `opcode ${opcode} with FIN 0 at ${at}` };
  }],
  ["continuation-without-start", 4, (random, frames, mask) => {
    const at = random.pick(messageBoundaries(frames));
    frames.splice(
      at,
      0,
      frame(
        OP.continuation,
        random.bytes(random.int(0, 8)),
        mask(),
        random.chance(0.5),
      ),
    );
    return { detail: `at ${at}` };
  }],
  ["start-inside-fragmented", 4, (random, frames, mask) => {
    let inside = continuations(frames);
    if (inside.length === 0) {
      const at = random.pick(messageBoundaries(frames));
      frames.splice(
        at,
        0,
        ...message(random, OP.binary, random.bytes(6), mask, 3),
      );
      inside = continuations(frames);
    }
    const at = random.pick(inside);
    const opcode = random.pick([OP.text, OP.binary]);
    frames.splice(
      at,
      0,
      frame(opcode, textPayload(random, 4), mask(), random.chance(0.5)),
    );
    return { detail: `opcode ${opcode} before frame ${at}` };
  }],
  ["invalid-utf8", 8, (random, frames, mask) => {
    const bad = invalidUtf8(random);
    const before = validUtf8(random, random.int(0, 30));
    const after = random.chance(0.5)
      ? new Uint8Array(0)
      : validUtf8(random, random.int(0, 30));
    const payload = new Uint8Array([...before, ...bad.bytes, ...after]);
    const at = random.pick(messageBoundaries(frames));
    const fragments = random.chance(0.5) ? 1 : random.int(2, 6);
    frames.splice(at, 0, ...message(random, OP.text, payload, mask, fragments));
    return { detail: `${bad.name} in ${fragments} fragment(s) at ${at}` };
  }],
  ["split-code-point", 3, (random, frames, mask) => {
    // Valid: every code point split across fragments, one byte per frame.
    const cp = random.pick([0xe9, 0x20ac, 0x1f600, 0x10ffff]);
    const payload = new Uint8Array(encodeCodePoint(cp));
    const at = random.pick(messageBoundaries(frames));
    frames.splice(
      at,
      0,
      ...message(random, OP.text, payload, mask, payload.length),
    );
    return { detail: `U+${cp.toString(16)} byte by byte at ${at}` };
  }],
  ["close-1-byte", 2, (random, frames, mask) => {
    frames.push(frame(OP.close, random.bytes(1), mask()));
    return { detail: "" };
  }],
  ["close-invalid-code", 4, (random, frames, mask) => {
    const code = random.pick(INVALID_CODES);
    frames.push(
      frame(
        OP.close,
        closePayload(code, validUtf8(random, random.int(0, 10))),
        mask(),
      ),
    );
    return { detail: `code ${code}` };
  }],
  ["close-invalid-reason", 3, (random, frames, mask) => {
    const bad = invalidUtf8(random);
    const reason = new Uint8Array([
      ...validUtf8(random, random.int(0, 20)),
      ...bad.bytes,
    ]);
    frames.push(
      frame(OP.close, closePayload(random.pick(VALID_CODES), reason), mask()),
    );
    return { detail: bad.name };
  }],
  ["close-long-reason", 1, (random, frames, mask) => {
    const reason = new Uint8Array(random.int(123, 124)).fill(0x61);
    frames.push(frame(OP.close, closePayload(1000, reason), mask()));
    return { detail: `${reason.length}-byte reason` };
  }],
  ["close-mid-stream", 4, (random, frames, mask) => {
    const at = random.int(0, frames.length);
    frames.splice(at, 0, closeFrame(random, mask));
    return { detail: `at ${at}` };
  }],
  ["too-big", 3, (random, frames, mask) => {
    const max = FUZZ_LIMITS.maxMessageSize;
    const size = random.pick([
      max - 1,
      max,
      max + 1,
      max + random.int(2, 5000),
    ]);
    const opcode = random.pick([OP.text, OP.binary]);
    const payload = opcode === OP.text
      ? new Uint8Array(size).fill(0x61)
      : random.bytes(size);
    const at = random.pick(messageBoundaries(frames));
    frames.splice(
      at,
      0,
      ...message(
        random,
        opcode,
        payload,
        mask,
        random.chance(0.5) ? 1 : random.int(2, 8),
      ),
    );
    return { detail: `${size}-byte message at ${at}` };
  }],
  ["too-many-fragments", 2, (random, frames, mask) => {
    const max = FUZZ_LIMITS.maxFragments;
    const count = random.pick([max - 1, max, max + 1, max + 5]);
    const at = random.pick(messageBoundaries(frames));
    frames.splice(
      at,
      0,
      ...message(random, OP.binary, random.bytes(count), mask, count),
    );
    return { detail: `${count} fragments at ${at}` };
  }],
  ["byte-flip", 6, (random, frames) => {
    const bytes = writeFrames(frames);
    if (bytes.length === 0) return { detail: "nothing to flip", bytes };
    const flips = random.int(1, 4);
    for (let i = 0; i < flips; i++) {
      bytes[random.int(0, bytes.length - 1)]! ^= random.int(1, 255);
    }
    return { detail: `${flips} byte(s)`, bytes };
  }],
  ["truncate", 6, (random, frames) => {
    const bytes = writeFrames(frames);
    const at = random.int(0, bytes.length);
    return { detail: `at ${at} of ${bytes.length}`, bytes: bytes.slice(0, at) };
  }],
  ["garbage", 3, (random, frames) => {
    const parts = frames.map(writeFrame);
    const at = random.int(0, parts.length);
    parts.splice(at, 0, random.bytes(random.int(1, 16)));
    return { detail: `before frame ${at}`, bytes: concatAll(parts) };
  }],
];

/** Where to cut `length` bytes into writes: whole, every byte, or at random. */
export function cutPoints(
  random: Random,
  length: number,
  maxCuts = 64,
): number[] {
  if (length <= 1) return [];
  const style = random.weighted([
    [3, "whole"],
    [length <= 600 ? 2 : 0, "bytes"],
    [6, "random"],
  ]);
  if (style === "whole") return [];
  if (style === "bytes") {
    return Array.from({ length: length - 1 }, (_, i) => i + 1);
  }
  const cuts = new Set<number>();
  const count = random.int(1, Math.min(maxCuts, length - 1));
  for (let i = 0; i < count; i++) cuts.add(random.int(1, length - 1));
  return [...cuts].sort((a, b) => a - b);
}

/**
 * A fuzzed frame stream for one of our endpoints: valid frames, one
 * mutation, and the cut points.
 *
 * @param ourRole The role of our endpoint: a server gets masked frames.
 * @param large Whether payloads of kilobytes (up to past the size limit) may appear.
 */
export function fuzzFrames(
  random: Random,
  ourRole: "server" | "client",
  large: boolean,
): FrameStream {
  const peerMasks = ourRole === "server";
  const mask: Masker = () => (peerMasks ? random.maskKey() : null);
  const frames = validFrames(random, mask, { large });
  const [name, , mutate] = random.weighted(
    MUTATIONS.map((entry) => [entry[1], entry] as const),
  );
  const { detail, bytes } = mutate(random, frames, mask, peerMasks);
  const stream = bytes ?? writeFrames(frames);
  return {
    mutation: detail === "" ? name : `${name}: ${detail}`,
    bytes: stream,
    cuts: cutPoints(random, stream.length),
  };
}

/** A short valid stream ending with a close frame 1000: what follows a fuzzed handshake. */
export function closingFrames(
  random: Random,
  ourRole: "server" | "client",
): FrameStream {
  const peerMasks = ourRole === "server";
  const mask: Masker = () => (peerMasks ? random.maskKey() : null);
  const frames = validFrames(random, mask, { large: false, close: false });
  frames.push(frame(OP.close, closePayload(1000, new Uint8Array(0)), mask()));
  const bytes = writeFrames(frames);
  return { mutation: "valid", bytes, cuts: cutPoints(random, bytes.length, 8) };
}
