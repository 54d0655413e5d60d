/**
 * The conformance suite against OUR CLIENT: our `connect()` with an
 * application that echoes, with the raw peer as the server.
 * One test per case of `cases.ts`, grouped by Autobahn category.
 *
 *     deno test -A tests/conformance/
 *     bun test ./tests/conformance/
 *
 * See README.md for what each category covers and the full mode.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { runtimeName } from "../../src/runtime.ts";
import { leaks, runCase } from "./_harness.ts";
import { cases, CATEGORIES, FULL, selected } from "./cases.ts";

describe(`conformance: our client on ${runtimeName()}${FULL ? " (full)" : ""}`, () => {
  after(() => {
    assert.deepEqual(leaks, [], "connections or servers left open");
  });
  for (const category of CATEGORIES) {
    describe(`${category.id} ${category.title}`, () => {
      for (const testCase of cases) {
        if (testCase.category !== category.id || !selected(testCase.id)) {
          continue;
        }
        test(
          `${testCase.id} ${testCase.description}`,
          () => runCase("client", testCase),
        );
      }
    });
  }
});
