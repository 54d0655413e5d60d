/**
 * Every input the fuzzer ever found to break something, as a named test with
 * the bytes inline and what broke. Each replays through the same session
 * runners and oracles as the fuzzer, so it checks everything a fuzz case
 * checks, not only the symptom first seen.
 *
 *     deno test -A tests/fuzz/regressions_test.ts
 *     bun test ./tests/fuzz/regressions_test.ts
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hex } from "../_frames.ts";
import { latin1, validResponse } from "./_handshake_cases.ts";
import { Harness, type Target } from "./_harness.ts";
import { runBounded, serverProblems } from "./_runner.ts";
import {
  AUTHORITY,
  type Defer,
  runClientSession,
  runServerSession,
} from "./_sessions.ts";

const TARGETS = ["pipe", "socket"] as const;

/** Runs sessions on a fresh harness; every problem of every run, none expected. */
async function replay(
  target: Target,
  runs: ((h: Harness, defer: Defer) => Promise<string[]>)[],
): Promise<string[]> {
  const h = await Harness.open(target);
  const problems: string[] = [];
  try {
    for (const [i, run] of runs.entries()) {
      const found = [
        ...(await runBounded((defer) => run(h, defer))),
        ...(await serverProblems(h)),
      ];
      problems.push(...found.map((problem) => `run ${i + 1}: ${problem}`));
    }
  } finally {
    await h.close();
  }
  return problems;
}

const frames = (bytes: Uint8Array) => ({
  mutation: "regression",
  bytes,
  cuts: [],
});
/** The length of the 101 response, where a cut puts the frames in a write of their own. */
const RESPONSE_LENGTH = validResponse("A".repeat(28)).length;

describe("fuzz regressions", () => {
  // Found by seed 1 (pipe case 8, "handshake, valid") and seed 2 (socket
  // case 1), shrunk to an empty close frame. Our client got the server's
  // close frame and, right behind it, the server's FIN. It queued its echo
  // of the close (and pongs for pings before it), then ended on the FIN by
  // aborting the transport's writer, which threw away whatever was still
  // queued: the server never got the close echo RFC 6455 §5.5.1 requires.
  // Fixed in src/connection.ts (#onEof): a clean end flushes what was
  // written before closing.
  const closes: [string, string][] = [
    ["an empty close frame", "88 00"],
    ["a ping, then a close frame 1000", "89 00 88 02 03 e8"],
    ["a close frame 1001 with a reason", "88 06 03 e9 62 79 65 21"],
  ];
  for (const target of TARGETS) {
    for (const [what, bytes] of closes) {
      test(`${target}: our client echoes ${what} that the server's FIN follows at once`, async () => {
        const problems = await replay(
          target,
          // In the response's write, and in a write of their own.
          [[], [RESPONSE_LENGTH]].map((cuts) => (h, defer) =>
            runClientSession(h, {
              path: "/",
              response: validResponse,
              cuts,
              endAfter: true,
              frames: frames(hex(bytes)),
              mode: "collect",
              highWaterMark: 16,
            }, defer)
          ),
        );
        assert.deepEqual(problems, []);
      });
    }
  }

  // Found by seed 1 (pipe cases, "handshake, host": "a b", "\xff",
  // "a:1:2") and seed 2 (socket cases: "a/b", "[::1", "a@b", "[::1]x"). Our
  // server answered 101 to a Host that is no host[:port]; it refused only a
  // missing, empty or repeated one. RFC 9112 §3.2: "A server MUST respond
  // with a 400 (Bad Request) status code to any HTTP/1.1 request message
  // that ... contains ... a Host header field with an invalid field value."
  // Fixed in src/handshake.ts (validateClientRequest).
  const request = (host: string) =>
    latin1(
      `GET /fuzz?app=collect HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\n` +
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Version: 13\r\n\r\n",
    );
  for (const target of TARGETS) {
    test(`${target}: our server refuses a Host that is not host[:port] with 400, and accepts a valid one`, async () => {
      const invalid = ["a b", "\xff", "a:1:2", "a/b", "[::1", "a@b", "[::1]x"];
      const problems = await replay(target, [
        ...invalid.map((host) => (h: Harness, defer: Defer) =>
          runServerSession(h, {
            request: request(host),
            requestCuts: [],
            endAfterRequest: true,
            frames: frames(new Uint8Array(0)),
          }, defer)
        ),
        // Still accepted: the server's own name, then a masked close 1000.
        (h, defer) =>
          runServerSession(h, {
            request: request(AUTHORITY),
            requestCuts: [],
            endAfterRequest: false,
            frames: frames(hex("88 82 00 00 00 00 03 e8")),
          }, defer),
      ]);
      assert.deepEqual(problems, []);
    });
  }
});
