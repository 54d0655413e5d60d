/**
 * The fuzzer's oracles and tools, checked against inputs whose outcome is
 * worked out by hand from the RFCs (and RFC 6455's own examples): a wrong
 * oracle would pass wrong behaviour, or fail right behaviour, on every run.
 *
 *     deno test -A tests/fuzz/oracles_test.ts
 *     bun test ./tests/fuzz/oracles_test.ts
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hex } from "../_frames.ts";
import { type Expectation, expectFrames } from "./_frame_oracle.ts";
import { latin1 } from "./_handshake_cases.ts";
import {
  acceptFor,
  judgeRequest,
  judgeResponse,
  type Verdict,
} from "./_http_oracle.ts";
import { memoryPair } from "./_memory_network.ts";
import { INVALID_UTF8, Utf8Checker, validUtf8 } from "./_utf8.ts";
import { Random } from "./_random.ts";
import { readFrames, writeFrame } from "./_wire.ts";

const LIMITS = { maxMessageSize: 100, maxFragments: 3 };
const toServer = (bytes: string) => expectFrames(hex(bytes), "server", LIMITS);
const toClient = (bytes: string) => expectFrames(hex(bytes), "client", LIMITS);
const ending = (e: Expectation) =>
  e.ending.kind === "fail" || e.ending.kind === "fail-or-eof"
    ? `${e.ending.kind} ${e.ending.codes.join("/")}`
    : e.ending.kind === "close"
    ? `close ${e.ending.code}`
    : "eof";

describe("frame oracle", () => {
  test("a masked Hello to a server is a message (RFC 6455 §5.7)", () => {
    const e = toServer("81 85 37 fa 21 3d 7f 9f 4d 51 58");
    assert.deepEqual(e.messages, ["Hello"]);
    assert.equal(ending(e), "eof");
  });

  test("masking is refused in the wrong direction", () => {
    assert.equal(ending(toServer("81 05 48 65 6c 6c 6f")), "fail 1002");
    assert.equal(
      ending(toClient("81 85 37 fa 21 3d 7f 9f 4d 51 58")),
      "fail 1002",
    );
  });

  test("fragments with a ping between them, then a close: one message, a pong, the close", () => {
    // RFC 6455 §5.7: "Hel" and "lo" unmasked; a ping "Hi"; close 1000.
    const e = toClient("01 03 48 65 6c 89 02 48 69 80 02 6c 6f 88 02 03 e8");
    assert.deepEqual(e.messages, ["Hello"]);
    assert.deepEqual(e.pongs, [hex("48 69")]);
    assert.equal(ending(e), "close 1000");
  });

  test("frame order: a continuation without a message, a message inside another", () => {
    assert.equal(ending(toClient("80 00")), "fail 1002");
    assert.equal(ending(toClient("01 01 61 81 01 62")), "fail 1002");
  });

  test("invalid UTF-8 fails at its first impossible byte, not before", () => {
    // "a", then ED A0 (a surrogate's start): ED alone could still be valid.
    assert.equal(ending(toClient("81 03 61 ed")), "eof");
    const e = toClient("81 03 61 ed a0");
    assert.equal(ending(e), "fail 1007");
    assert.equal(e.at, 5);
    // A message that ends inside a sequence.
    assert.equal(ending(toClient("81 02 61 e2")), "fail 1007");
  });

  test("close payloads: empty, 1 byte, reserved codes, bad reasons", () => {
    assert.equal(ending(toClient("88 00")), "close 1005");
    assert.equal(ending(toClient("88 01 03")), "fail 1002");
    assert.equal(ending(toClient("88 02 03 ed")), "fail 1002"); // 1005
    assert.equal(ending(toClient("88 02 0b b8")), "close 3000");
    assert.equal(ending(toClient("88 03 03 e8 ff")), "fail 1007");
    assert.equal(ending(toClient("88 03 03 ec ff")), "fail 1002/1007"); // 1004 and bad UTF-8
  });

  test("lengths: non-minimal and top bit, and the limits on the header alone", () => {
    assert.equal(ending(toClient("82 7e 00 05 01 02 03 04 05")), "fail 1002");
    assert.equal(
      ending(toClient("82 7f 80 00 00 00 00 00 00 01")),
      "fail 1002/1009",
    );
    assert.equal(ending(toClient("82 65")), "fail 1009"); // 101 > 100 bytes, no payload needed
    assert.equal(ending(toClient("02 00 00 00 00 00 80 00")), "fail 1009"); // a 4th fragment
    assert.equal(ending(toClient("82 64")), "eof"); // exactly 100: fine, then cut short
  });

  test("a header cut short that already breaks a rule may fail or end", () => {
    assert.equal(ending(toClient("c2")), "fail-or-eof 1002"); // RSV1
    assert.equal(ending(toClient("82")), "eof");
  });

  test("nothing after a close counts", () => {
    const e = toClient("88 02 03 e8 89 00 ff ff");
    assert.deepEqual(e.pongs, []);
    assert.equal(ending(e), "close 1000");
  });
});

describe("UTF-8 checker", () => {
  test("refuses every invalid sample and accepts valid text, as a fatal TextDecoder does", () => {
    const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    const random = new Random(7);
    const samples = [
      ...INVALID_UTF8.map(([, bytes]) => new Uint8Array(bytes)),
      ...Array.from(
        { length: 200 },
        () => validUtf8(random, random.int(0, 40)),
      ),
    ];
    for (const bytes of samples) {
      const checker = new Utf8Checker();
      const ok = checker.pushAll(bytes) === -1 && checker.complete;
      let expected: string | null = null;
      try {
        expected = decoder.decode(bytes);
      } catch {
        // invalid
      }
      assert.equal(ok ? checker.text() : null, expected, `bytes ${[...bytes]}`);
    }
  });
});

describe("wire", () => {
  test("writes RFC 6455's masked Hello and reads it back", () => {
    const bytes = writeFrame({
      fin: true,
      rsv: 0,
      opcode: 1,
      mask: hex("37 fa 21 3d"),
      payload: new TextEncoder().encode("Hello"),
    });
    assert.deepEqual(bytes, hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"));
    const read = readFrames(bytes, true);
    assert.equal(read.error, null);
    assert.equal(new TextDecoder().decode(read.frames[0]!.payload), "Hello");
    assert.match(readFrames(bytes, false).error ?? "", /masked/);
    assert.match(
      readFrames(hex("82 7e 00 05 01 02 03 04 05"), false).error ?? "",
      /non-minimal/,
    );
  });
});

const REQUEST =
  "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n" +
  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "Sec-WebSocket-Version: 13\r\n\r\n";
const judge = (text: string, eof = true): Verdict =>
  judgeRequest(latin1(text), eof, "server.example.com");
const statuses = (v: Verdict) => [...v.statuses].sort();

describe("request oracle", () => {
  test("RFC 6455 §1.3's request is accepted", () => {
    const v = judge(REQUEST);
    assert.equal(v.decision, "accept");
    assert.equal(v.key, "dGhlIHNhbXBsZSBub25jZQ==");
  });

  test("what must be refused, and with what", () => {
    const refused = (text: string) => {
      const v = judge(text);
      assert.equal(v.decision, "refuse", text);
      return statuses(v);
    };
    assert.deepEqual(refused(REQUEST.replace("Upgrade: websocket\r\n", "")), [
      400,
      426,
    ]);
    assert.deepEqual(refused(REQUEST.replace("GET", "POST")), [400, 405, 501]);
    assert.deepEqual(refused(REQUEST.replace("Host:", "Host :")), [400]);
    assert.deepEqual(refused(REQUEST.replace("server.example.com", "a b")), [
      400,
    ]);
    assert.deepEqual(refused(REQUEST.replace("13", "8")), [400, 426]);
    assert.deepEqual(
      refused(REQUEST.replace("\r\n\r\n", "\r\nSec-WebSocket-Key: x\r\n\r\n")),
      [400],
    );
    const fields = Array.from({ length: 124 }, (_, i) => `X-${i}: 1\r\n`).join(
      "",
    );
    assert.deepEqual(
      refused(REQUEST.replace("\r\n\r\n", `\r\n${fields}\r\n`)),
      [431],
    );
  });

  test("the 128-field limit is exact", () => {
    const fields = Array.from({ length: 123 }, (_, i) => `X-${i}: 1\r\n`).join(
      "",
    );
    assert.equal(
      judge(REQUEST.replace("\r\n\r\n", `\r\n${fields}\r\n`)).decision,
      "accept",
    );
  });

  test("what the RFCs leave to the server", () => {
    assert.equal(judge(REQUEST.replaceAll("\r\n", "\n")).decision, "either"); // bare LF
    assert.equal(
      judge(REQUEST.replace("Upgrade: websocket", "Upgrade:\r\n websocket"))
        .decision,
      "either",
    );
    assert.equal(judge(REQUEST.replace("/chat", "/a{b}")).decision, "either");
  });

  test("an unfinished head: 400 if the client ended, 408 if it waits", () => {
    assert.deepEqual(statuses(judge(REQUEST.slice(0, 40), true)), [400]);
    assert.deepEqual(statuses(judge(REQUEST.slice(0, 40), false)), [408]);
  });
});

describe("response oracle", () => {
  const key = "dGhlIHNhbXBsZSBub25jZQ==";
  const response = (accept: string) =>
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;

  test("RFC 6455 §1.3's response is accepted; a wrong accept is not", async () => {
    const accept = await acceptFor(key);
    assert.equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert.equal(
      judgeResponse(latin1(response(accept)), true, accept).decision,
      "accept",
    );
    const wrong = judgeResponse(
      latin1(response(accept.toLowerCase())),
      true,
      accept,
    );
    assert.equal(wrong.decision, "refuse");
    assert.deepEqual(statuses(wrong), [0, 101]);
  });

  test("another status is a refusal with that status; no end is a timeout", () => {
    const v = judgeResponse(
      latin1("HTTP/1.1 404 Not Found\r\n\r\n"),
      true,
      "x",
    );
    assert.deepEqual([v.decision, ...statuses(v)], ["refuse", 0, 404]);
    const hung = judgeResponse(latin1("HTTP/1.1 101 Switching"), false, "x");
    assert.deepEqual([hung.decision, hung.timeout], ["refuse", true]);
  });
});

describe("memory network", () => {
  test("close() ends both ways even while locked: the peer reads what was sent, then the end; its writes fail", async () => {
    const [a, b] = memoryPair();
    const aWriter = a.writable.getWriter();
    a.readable.getReader(); // locked, as a connection holds it
    await aWriter.write(hex("01 02"));
    a.close();
    const reader = b.readable.getReader();
    assert.deepEqual((await reader.read()).value, hex("01 02"));
    assert.equal((await reader.read()).done, true);
    await assert.rejects(b.writable.getWriter().write(hex("03")));
  });
});
