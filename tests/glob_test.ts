/** `Glob`: wildcards, escapes, captures, case, and the specificity order. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Glob } from "../src/glob.ts";

describe("Glob", () => {
  test("* matches any run, / included; ? one character", () => {
    const glob = new Glob("/a/*/b?");
    assert.deepEqual(glob.match("/a/x/y/bz"), ["x/y", "z"]);
    assert.deepEqual(glob.match("/a//bz"), ["", "z"]);
    assert.equal(glob.match("/a/x/b"), null);
    assert.ok(new Glob("*").test(""));
    assert.ok(!new Glob("").test("x"));
  });

  test("matches the whole text, and RegExp syntax is literal", () => {
    assert.ok(!new Glob("/chat").test("/chat/x"));
    assert.ok(!new Glob("/chat").test("x/chat"));
    for (const text of ["a.b", "(x)", "a+b", "[z]", "^$", "{1}", "a|b", "/"]) {
      assert.ok(new Glob(text).test(text), text);
    }
    assert.ok(!new Glob("a.b").test("axb"));
  });

  test("a backslash makes the next character literal", () => {
    assert.ok(new Glob("a\\*").test("a*"));
    assert.ok(!new Glob("a\\*").test("ab"));
    assert.ok(new Glob("\\?").test("?") && !new Glob("\\?").test("x"));
    assert.ok(new Glob("a\\\\").test("a\\"));
  });

  test("ignoreCase matches letters in either case; the default does not", () => {
    assert.ok(
      new Glob("*.Example.COM", { ignoreCase: true }).test("a.example.com"),
    );
    assert.ok(!new Glob("*.Example.COM").test("a.example.com"));
  });

  test("? matches one code point, not half a surrogate pair", () => {
    assert.deepEqual(new Glob("?").match("😀"), ["😀"]);
  });

  test("compare puts more literals first, then fewer *, then fewer ?", () => {
    const sorted = ["*", "/chat/*", "/chat/lobby", "/chat/?obby", "/chat/*obby"]
      .map((pattern) => new Glob(pattern))
      .sort(Glob.compare)
      .map((glob) => glob.pattern);
    assert.deepEqual(sorted, [
      "/chat/lobby",
      "/chat/?obby",
      "/chat/*obby",
      "/chat/*",
      "*",
    ]);
  });

  test("a pattern that is not a string throws TypeError", () => {
    assert.throws(() => new Glob(1 as unknown as string), TypeError);
  });
});
