import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { HandshakeError } from "../src/errors.ts";
import {
  type ExtensionOffer,
  formatExtensions,
  hasToken,
  parseExtensions,
  parseProtocols,
  selectSubprotocol,
} from "../src/handshake_headers.ts";
import { refused } from "./_handshake.ts";

describe("hasToken", () => {
  test("hasToken matches list elements case-insensitively", () => {
    assert.equal(hasToken("Upgrade", "upgrade"), true);
    assert.equal(hasToken("keep-alive, Upgrade", "upgrade"), true);
    assert.equal(hasToken("keep-alive,\tUPGRADE ", "Upgrade"), true);
    assert.equal(hasToken("WebSocket", "websocket"), true);
  });

  test("hasToken does not match parts of elements, empty values or null", () => {
    assert.equal(hasToken("upgrade-insecure-requests", "upgrade"), false);
    assert.equal(hasToken("keep-alive upgrade", "upgrade"), false);
    assert.equal(hasToken("websocket/13", "websocket"), false);
    assert.equal(hasToken("", "upgrade"), false);
    assert.equal(hasToken(null, "upgrade"), false);
  });

  test("hasToken folds ASCII case only (RFC 6455 §4.2.1)", () => {
    // U+212A KELVIN SIGN lower-cases to "k" in Unicode, not in ASCII.
    assert.equal(hasToken("websoc\u212Aet", "websocket"), false);
    assert.equal(hasToken("WEBSOCKET", "websocket"), true);
    assert.equal(hasToken("a,,websocket,", "websocket"), true);
    assert.equal(hasToken("a,,", ""), true); // an empty element, as split gives
  });
  test("hasToken and parseProtocols stay linear on long runs of inner spaces", () => {
    const value = `a${" ".repeat(60000)}b, upgrade`;
    const start = performance.now();
    assert.equal(hasToken(value, "upgrade"), true);
    assert.throws(() => parseProtocols(value), HandshakeError);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 200, `took ${elapsed} ms`);
  });
});

describe("parseExtensions", () => {
  test("parseExtensions returns [] for an absent or empty header", () => {
    assert.deepEqual(parseExtensions(null), []);
    assert.deepEqual(parseExtensions(""), []);
    assert.deepEqual(parseExtensions(" , ,"), []);
  });

  test("parseExtensions reads names, bare params and token values", () => {
    assert.deepEqual(
      parseExtensions(
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10",
      ),
      [{
        name: "permessage-deflate",
        params: { client_max_window_bits: true, server_max_window_bits: "10" },
      }],
    );
  });

  test("parseExtensions unquotes quoted values and their backslash escapes", () => {
    assert.deepEqual(parseExtensions('x; a="10"; b="1\\0"; c="\\a\\b"'), [
      { name: "x", params: { a: "10", b: "10", c: "ab" } },
    ]);
  });

  test("parseExtensions keeps several offers, of the same extension too, in order", () => {
    assert.deepEqual(
      parseExtensions(
        "permessage-deflate; client_no_context_takeover, permessage-deflate, x-other",
      ),
      [
        {
          name: "permessage-deflate",
          params: { client_no_context_takeover: true },
        },
        { name: "permessage-deflate", params: {} },
        { name: "x-other", params: {} },
      ],
    );
  });

  test("parseExtensions allows whitespace around tokens and separators, and empty elements", () => {
    assert.deepEqual(parseExtensions(" , a ;\tb = 1 ; c , ,b ,"), [
      { name: "a", params: { b: "1", c: true } },
      { name: "b", params: {} },
    ]);
  });

  test("parseExtensions keeps the order of params", () => {
    const [offer] = parseExtensions("x; z=1; a; m=2");
    assert.deepEqual(Object.keys(offer!.params), ["z", "a", "m"]);
  });

  test("parseExtensions stores a param named __proto__ as a plain property", () => {
    const [offer] = parseExtensions("x; __proto__=1");
    assert.equal(Object.getPrototypeOf(offer!.params), Object.prototype);
    assert.deepEqual(Object.entries(offer!.params), [["__proto__", "1"]]);
  });

  const malformed: [string, string, RegExp][] = [
    ["a leading semicolon", "; a", /expected an extension name/],
    ["a missing param name", "x; ", /expected a parameter name for x/],
    ["a missing value", "x; a=", /expected a value for a/],
    ["a value with a separator", "x; a=b=c", /expected "," or ";"/],
    ["a space inside a name", "x y", /expected "," or ";"/],
    ["a non-token name", "x(1)", /expected "," or ";"/],
    ["an unterminated quoted-string", 'x; a="10', /unterminated quoted-string/],
    ["an escape at the end", 'x; a="1\\', /unterminated quoted-string/],
    [
      "a quoted value that is not a token",
      'x; a="1 0"',
      /not a token once unquoted/,
    ],
    ["an empty quoted value", 'x; a=""', /not a token once unquoted/],
    [
      "a control character in a quoted-string",
      'x; a="1\x010"',
      /control character/,
    ],
    ["a repeated param", "x; a; a=1", /parameter a of x is repeated/],
    ["a non-ASCII name", "d\xe9flate", /expected "," or ";"/],
  ];
  for (const [what, value, message] of malformed) {
    test(`parseExtensions refuses ${what} with 400`, () => {
      assert.throws(
        () => parseExtensions(value),
        refused(
          400,
          new RegExp(`^Malformed Sec-WebSocket-Extensions .*${message.source}`),
        ),
      );
    });
  }
});

describe("formatExtensions", () => {
  test("formatExtensions writes offers that parseExtensions reads back", () => {
    const offers: ExtensionOffer[] = [
      {
        name: "permessage-deflate",
        params: { client_max_window_bits: true, server_max_window_bits: "10" },
      },
      { name: "permessage-deflate", params: {} },
    ];
    const value = formatExtensions(offers);
    assert.equal(
      value,
      "permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate",
    );
    assert.deepEqual(parseExtensions(value), offers);
    assert.equal(formatExtensions([]), "");
  });

  test("formatExtensions refuses names and values that are not tokens with TypeError", () => {
    assert.throws(
      () => formatExtensions([{ name: "a b", params: {} }]),
      TypeError,
    );
    assert.throws(
      () => formatExtensions([{ name: "x", params: { "a=": true } }]),
      TypeError,
    );
    assert.throws(
      () => formatExtensions([{ name: "x", params: { a: "1 0" } }]),
      TypeError,
    );
    assert.throws(
      () => formatExtensions([{ name: "x", params: { a: "" } }]),
      TypeError,
    );
    assert.throws(
      () => formatExtensions([{ name: "x", params: { a: "1\r\nX: y" } }]),
      TypeError,
    );
  });
});

describe("parseProtocols", () => {
  test("parseProtocols splits a comma-separated list, trimming whitespace, skipping empties", () => {
    assert.deepEqual(parseProtocols(null), []);
    assert.deepEqual(parseProtocols(""), []);
    assert.deepEqual(parseProtocols("chat"), ["chat"]);
    assert.deepEqual(parseProtocols(" v2.chat ,\tv1.chat,, "), [
      "v2.chat",
      "v1.chat",
    ]);
  });

  test("parseProtocols refuses a name that is not a token with 400", () => {
    for (const value of ["a b", "a, b/c", 'a, "b"', "caf\xe9"]) {
      assert.throws(
        () => parseProtocols(value),
        refused(400, /Malformed Sec-WebSocket-Protocol: .* is not a token/),
      );
    }
  });

  test("parseProtocols stays linear on thousands of names", () => {
    const names = Array.from({ length: 30000 }, (_, i) => `p${i}`);
    const start = performance.now();
    assert.equal(parseProtocols(names.join(",")).length, 30000);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 500, `took ${elapsed} ms`);
  });

  test("parseProtocols refuses a repeated name with 400, comparing case-sensitively", () => {
    assert.throws(
      () => parseProtocols("chat, chat"),
      refused(400, /chat is listed twice/),
    );
    assert.deepEqual(parseProtocols("chat, Chat"), ["chat", "Chat"]);
  });
});

describe("selectSubprotocol", () => {
  test("selectSubprotocol picks by the client's order of preference, not the server's", () => {
    assert.equal(selectSubprotocol(["v3", "v2", "v1"], ["v1", "v2"]), "v2");
    assert.equal(selectSubprotocol(["v1", "v2"], ["v2", "v1"]), "v1");
  });

  test("selectSubprotocol returns null when nothing is shared", () => {
    assert.equal(selectSubprotocol(["v3"], ["v1"]), null);
    assert.equal(selectSubprotocol([], ["v1"]), null);
    assert.equal(selectSubprotocol(["v1"], []), null);
    assert.equal(selectSubprotocol(["Chat"], ["chat"]), null);
  });
});

describe("garbage", () => {
  test("parseExtensions and parseProtocols throw nothing but HandshakeError on random strings", () => {
    let seed = 4;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const alphabet = 'ab;=," \\\t\x00\xe9-_';
    for (let round = 0; round < 5000; round++) {
      let value = "";
      const length = Math.floor(random() * 30);
      for (let i = 0; i < length; i++) {
        value += alphabet[Math.floor(random() * alphabet.length)];
      }
      for (const parse of [parseExtensions, parseProtocols]) {
        try {
          parse(value);
        } catch (error) {
          assert.ok(
            error instanceof HandshakeError,
            `${JSON.stringify(value)}: ${error}`,
          );
        }
      }
    }
  });

  test("parseExtensions output always formats and parses back to itself", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const alphabet = 'ab;=," \\';
    let parsed = 0;
    for (let round = 0; round < 5000; round++) {
      let value = "";
      const length = Math.floor(random() * 24);
      for (let i = 0; i < length; i++) {
        value += alphabet[Math.floor(random() * alphabet.length)];
      }
      let offers: ExtensionOffer[];
      try {
        offers = parseExtensions(value);
      } catch {
        continue;
      }
      parsed++;
      assert.deepEqual(
        parseExtensions(formatExtensions(offers)),
        offers,
        JSON.stringify(value),
      );
    }
    assert.ok(parsed > 100);
  });
});
