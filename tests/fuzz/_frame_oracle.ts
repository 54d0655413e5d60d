/**
 * The fuzzer's oracle for frame streams: from the bytes a peer sends, what
 * RFC 6455 says the receiving endpoint must do. Written from the RFC, not
 * from `src/` (it never calls our decoder or protocol), and whole-buffer
 * rather than incremental, so the two are unlikely to share a mistake.
 *
 * The outcome is exact where the RFC is: the messages delivered, the pongs
 * owed, and the close code. Where a single frame breaks several rules at
 * once, the RFC does not say which to report, so every code that applies is
 * allowed. Where the stream ends inside a frame header that already breaks a
 * rule, an endpoint may fail at once or wait for the rest of the header, so
 * both are allowed.
 *
 * wsstream's own policies that the oracle takes as given: it fails on the
 * first invalid UTF-8 byte (README: "invalid UTF-8 fails on the first bad
 * byte, even mid-fragment"); it checks `maxMessageSize` and `maxFragments`
 * on each frame header; and close codes 1016–2999 are refused, as
 * Autobahn's cases 7.9.x expect.
 *
 * @module
 */
import { concatAll } from "../_frames.ts";
import { Utf8Checker } from "./_utf8.ts";

/** The receiving endpoint's limits. */
export interface FrameLimits {
  maxMessageSize: number;
  maxFragments: number;
}

/** A message: text as a string, binary as bytes. */
export type Message = string | Uint8Array;

/** How the connection must end. */
export type Ending =
  /** The endpoint fails the connection: a close frame with one of `codes`. */
  | { kind: "fail"; codes: readonly number[]; why: string }
  /** The peer closed cleanly: the endpoint echoes `code` (1005: no code). */
  | { kind: "close"; code: number; reason: string }
  /** The stream ended without a close frame: 1006, nothing sent. */
  | { kind: "eof" }
  /** The stream ended inside a header that breaks a rule: either of the above. */
  | { kind: "fail-or-eof"; codes: readonly number[]; why: string };

/** What the endpoint must do with a stream. */
export interface Expectation {
  /** Every message it delivers, in order, and no other. */
  messages: Message[];
  /** The payload of each pong it owes, in order. */
  pongs: Uint8Array[];
  /** How the connection ends. */
  ending: Ending;
  /** The byte offset at which the ending was decided. */
  at: number;
}

/** RFC 6455 §7.4: the codes a close frame may carry (1012–1014 from IANA's registry). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

const isControl = (opcode: number) => opcode >= 8;
const isKnown = (opcode: number) =>
  opcode <= 2 || (opcode >= 8 && opcode <= 10);

/**
 * What the receiving endpoint must do with `bytes`, followed by the end of
 * the stream.
 *
 * @param bytes Everything the peer sends after the handshake.
 * @param ourRole The receiving endpoint's role: a server wants masked frames,
 * a client unmasked ones.
 * @param limits The receiver's `maxMessageSize` and `maxFragments`.
 */
export function expectFrames(
  bytes: Uint8Array,
  ourRole: "server" | "client",
  limits: FrameLimits,
): Expectation {
  const wantMasked = ourRole === "server";
  const messages: Message[] = [];
  const pongs: Uint8Array[] = [];
  // The message being received, if any.
  let messageOpcode = 0;
  let messageSize = 0;
  let fragments = 0;
  let parts: Uint8Array[] = [];
  let text: Utf8Checker | null = null;

  const end = (ending: Ending, at: number): Expectation => ({
    messages,
    pongs,
    ending,
    at,
  });

  let pos = 0;
  while (pos < bytes.length) {
    const b0 = bytes[pos]!;
    const fin = (b0 & 0x80) !== 0;
    const rsv = (b0 >> 4) & 7;
    const opcode = b0 & 0x0f;
    const problems: [number, string][] = [];
    // What the first byte alone shows.
    if (rsv !== 0) problems.push([1002, `RSV bits ${rsv} set`]);
    if (!isKnown(opcode)) problems.push([1002, `reserved opcode ${opcode}`]);
    if (isKnown(opcode) && isControl(opcode) && !fin) {
      problems.push([1002, "fragmented control frame"]);
    }
    if (opcode === 0 && messageOpcode === 0) {
      problems.push([1002, "continuation without a message"]);
    }
    if ((opcode === 1 || opcode === 2) && messageOpcode !== 0) {
      problems.push([1002, "new message inside a fragmented one"]);
    }
    if (bytes.length - pos < 2) {
      return end(partialHeader(problems), bytes.length);
    }
    const b1 = bytes[pos + 1]!;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    if (masked !== wantMasked) {
      problems.push([
        1002,
        masked ? "masked frame to a client" : "unmasked frame to a server",
      ]);
    }
    if (isKnown(opcode) && isControl(opcode) && len7 > 125) {
      problems.push([1002, "control frame over 125 bytes"]);
    }
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const headerSize = 2 + extra + (masked ? 4 : 0);
    if (bytes.length - pos < headerSize) {
      if (len7 === 127 && bytes.length - pos > 2 && (bytes[pos + 2]! & 0x80)) {
        problems.push([1002, "64-bit length with the top bit set"]);
      }
      return end(partialHeader(problems), bytes.length);
    }
    let length: number;
    if (len7 === 126) {
      length = (bytes[pos + 2]! << 8) | bytes[pos + 3]!;
      if (length < 126) problems.push([1002, "16-bit length under 126"]);
    } else if (len7 === 127) {
      let big = 0n;
      for (let i = 0; i < 8; i++) {
        big = (big << 8n) | BigInt(bytes[pos + 2 + i]!);
      }
      if (big >= 1n << 63n) {
        problems.push([1002, "64-bit length with the top bit set"]);
      }
      if (big < 0x10000n) problems.push([1002, "64-bit length under 65536"]);
      length = big > BigInt(Number.MAX_SAFE_INTEGER)
        ? Number.MAX_SAFE_INTEGER
        : Number(big);
    } else {
      length = len7;
    }
    if (opcode <= 2) {
      const continuing = opcode === 0 && messageOpcode !== 0;
      if ((continuing ? messageSize : 0) + length > limits.maxMessageSize) {
        problems.push([1009, `message over ${limits.maxMessageSize} bytes`]);
      }
      if ((continuing ? fragments : 0) + 1 > limits.maxFragments) {
        problems.push([1009, `message in over ${limits.maxFragments} frames`]);
      }
    }
    if (problems.length > 0) {
      return end(failure(problems), pos + headerSize);
    }

    // A valid header: the message state moves on before any payload.
    if (opcode === 1 || opcode === 2) {
      messageOpcode = opcode;
      messageSize = 0;
      fragments = 0;
      parts = [];
      text = opcode === 1 ? new Utf8Checker() : null;
    }
    if (opcode <= 2) {
      messageSize += length;
      fragments++;
    }
    const start = pos + headerSize;
    const available = Math.min(length, bytes.length - start);
    const payload = bytes.slice(start, start + available);
    if (masked) {
      const key = bytes.subarray(start - 4, start);
      for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    }
    if (opcode <= 2 && text !== null) {
      const bad = text.pushAll(payload);
      if (bad !== -1) {
        return end(
          {
            kind: "fail",
            codes: [1007],
            why: "invalid UTF-8 in a text message",
          },
          start + bad + 1,
        );
      }
    }
    if (available < length) return end({ kind: "eof" }, bytes.length);
    pos = start + length;

    if (opcode === 9) {
      pongs.push(payload);
    } else if (opcode === 8) {
      if (payload.length === 0) {
        return end({ kind: "close", code: 1005, reason: "" }, pos);
      }
      if (payload.length === 1) {
        return end(
          { kind: "fail", codes: [1002], why: "close payload of 1 byte" },
          pos,
        );
      }
      const code = (payload[0]! << 8) | payload[1]!;
      const closeProblems: [number, string][] = [];
      if (!isSendableCloseCode(code)) {
        closeProblems.push([1002, `close code ${code}`]);
      }
      const reason = new Utf8Checker();
      if (reason.pushAll(payload.subarray(2)) !== -1 || !reason.complete) {
        closeProblems.push([1007, "close reason not UTF-8"]);
      }
      if (closeProblems.length > 0) return end(failure(closeProblems), pos);
      return end({ kind: "close", code, reason: reason.text() }, pos);
    } else if (opcode <= 2) {
      parts.push(payload);
      if (fin) {
        if (text !== null) {
          if (!text.complete) {
            return end(
              {
                kind: "fail",
                codes: [1007],
                why: "text message ends inside a UTF-8 sequence",
              },
              pos,
            );
          }
          messages.push(text.text());
        } else {
          messages.push(concatAll(parts));
        }
        messageOpcode = 0;
        parts = [];
        text = null;
      }
    }
  }
  return end({ kind: "eof" }, bytes.length);
}

function codesOf(problems: readonly [number, string][]): number[] {
  return [...new Set(problems.map(([code]) => code))].sort();
}

function failure(problems: readonly [number, string][]): Ending {
  return {
    kind: "fail",
    codes: codesOf(problems),
    why: problems.map(([, why]) => why).join("; "),
  };
}

function partialHeader(problems: readonly [number, string][]): Ending {
  if (problems.length === 0) return { kind: "eof" };
  return {
    kind: "fail-or-eof",
    codes: codesOf(problems),
    why: problems.map(([, why]) => why).join("; "),
  };
}
