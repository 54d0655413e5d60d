/**
 * One fuzz case from `(seed, target, index)`: which side of ours it feeds
 * (server or client), whether it fuzzes the frames or the handshake, and all
 * its inputs. The side and kind come from the case's own random stream, so a
 * case index means the same case whatever `--side` filters out.
 *
 * @module
 */
import {
  type AppMode,
  closingFrames,
  cutPoints,
  type FrameStream,
  fuzzFrames,
} from "./_frame_cases.ts";
import type { Harness, Target } from "./_harness.ts";
import {
  fuzzRequest,
  fuzzResponse,
  headBytes,
  randomKey,
  validRequest,
  validResponse,
} from "./_handshake_cases.ts";
import { judgeRequest, judgeResponse } from "./_http_oracle.ts";
import { caseSeed, Random } from "./_random.ts";
import {
  AUTHORITY,
  type Defer,
  runClientSession,
  runServerSession,
  runTakeover,
} from "./_sessions.ts";

/** Which of our endpoints a case feeds. */
export type Side = "server" | "client";
/** What a case fuzzes. */
export type Kind = "frames" | "handshake";

/** A generated case, ready to run. */
export interface FuzzCase {
  target: Target;
  index: number;
  side: Side;
  kind: Kind;
  /** The mutation, in words. */
  mutation: string;
  /** The inputs, for the report (hex). */
  inputs: { label: string; bytes: Uint8Array }[];
  /** Runs it; the problems found. */
  run(h: Harness, defer: Defer): Promise<string[]>;
  /** For shrinking: which input can be replaced, and the case with it replaced. */
  shrink?: { input: number; withInput(bytes: Uint8Array): FuzzCase };
}

const TARGET_TAGS: Record<Target, number> = { pipe: 1, socket: 2 };
const DUMMY_ACCEPT = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";

function appMode(random: Random): AppMode {
  return random.weighted([[5, "collect"], [3, "echo"], [2, "slow"]] as const);
}

/** The case `index` of `target` in the run of `seed`. */
export function makeCase(
  seed: number,
  target: Target,
  index: number,
): FuzzCase {
  const random = new Random(caseSeed(seed, TARGET_TAGS[target], index));
  const side: Side = random.chance(0.5) ? "server" : "client";
  const kind: Kind = random.chance(target === "pipe" ? 0.3 : 0.35)
    ? "handshake"
    : "frames";
  const mode = appMode(random);
  const highWaterMark = random.pick([1, 2, 16]);
  const path = `/fuzz/${index}?app=${mode}`;
  const base = { target, index, side, kind };

  if (kind === "frames" && target === "pipe") {
    const frames = fuzzFrames(random, side, true);
    const make = (frames: FrameStream): FuzzCase => ({
      ...base,
      mutation: frames.mutation,
      inputs: [{ label: "frames", bytes: frames.bytes }],
      run: (_h, defer) =>
        runTakeover({ role: side, frames, mode, highWaterMark }, defer),
      shrink: {
        input: 0,
        withInput: (bytes) =>
          make({ ...frames, bytes, cuts: shrinkCuts(frames, bytes) }),
      },
    });
    return make(frames);
  }

  if (side === "server") {
    const head = kind === "handshake" ? fuzzRequest(random, AUTHORITY, path) : {
      mutation: "valid",
      bytes: headBytes(
        validRequest(random, AUTHORITY, path, randomKey(random)),
      ),
    };
    const requestCuts = cutPoints(random, head.bytes.length, 16);
    const refused =
      judgeRequest(head.bytes, true, AUTHORITY).decision === "refuse";
    // A refused request is mostly followed by a half-close; now and then
    // the client just waits (an unfinished head then meets the 408).
    const endAfterRequest = refused && random.chance(0.97);
    const frames = kind === "handshake"
      ? closingFrames(random, "server")
      : fuzzFrames(random, "server", random.chance(0.3));
    const make = (request: Uint8Array, frames: FrameStream): FuzzCase => ({
      ...base,
      mutation: kind === "handshake" ? head.mutation : frames.mutation,
      inputs: [
        { label: "request", bytes: request },
        { label: "frames after the 101", bytes: frames.bytes },
      ],
      run: (h, defer) =>
        runServerSession(h, {
          request,
          requestCuts: kind === "handshake"
            ? shrinkCuts({ bytes: head.bytes, cuts: requestCuts }, request)
            : requestCuts,
          endAfterRequest,
          frames,
        }, defer),
      shrink: kind === "handshake"
        ? { input: 0, withInput: (bytes) => make(bytes, frames) }
        : {
          input: 1,
          withInput: (bytes) =>
            make(request, {
              ...frames,
              bytes,
              cuts: shrinkCuts(frames, bytes),
            }),
        },
    });
    return make(head.bytes, frames);
  }

  // Our client against a raw server.
  const responseSeed = random.int(0, 0xffffffff);
  const response = (accept: string) =>
    kind === "handshake"
      ? fuzzResponse(new Random(responseSeed), accept)
      : { mutation: "valid", bytes: validResponse(accept) };
  const frames = kind === "handshake"
    ? closingFrames(random, "client")
    : fuzzFrames(random, "client", random.chance(0.3));
  const preview = response(DUMMY_ACCEPT);
  const length = preview.bytes.length + frames.bytes.length;
  const cuts = cutPoints(random, length, 16);
  const refused = judgeResponse(
    new Uint8Array([...preview.bytes, ...frames.bytes]),
    true,
    DUMMY_ACCEPT,
  ).decision === "refuse";
  const endAfter = !(refused && random.chance(0.03));
  const make = (frames: FrameStream): FuzzCase => ({
    ...base,
    mutation: kind === "handshake" ? preview.mutation : frames.mutation,
    inputs: [
      { label: "response (with a placeholder accept)", bytes: preview.bytes },
      { label: "frames after the response", bytes: frames.bytes },
    ],
    run: (h, defer) =>
      runClientSession(h, {
        path,
        response: (accept) => response(accept).bytes,
        cuts,
        endAfter,
        frames,
        mode,
        highWaterMark,
      }, defer),
    // The response is made anew for each accept value: the frames shrink.
    shrink: {
      input: 1,
      withInput: (bytes) => make({ ...frames, bytes, cuts: [] }),
    },
  });
  return make(frames);
}

/** Cut points for a shrunk input: whole, or every byte if the original was. */
function shrinkCuts(
  original: { bytes: Uint8Array; cuts: number[] },
  bytes: Uint8Array,
): number[] {
  if (bytes === original.bytes) return original.cuts;
  const everyByte = original.cuts.length > 0 &&
    original.cuts.length === original.bytes.length - 1;
  return everyByte
    ? Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => i + 1)
    : [];
}
