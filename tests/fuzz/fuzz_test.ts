/**
 * The fuzzer's short run in the suite: a fixed seed, about 15 s on the
 * in-memory pipe and 10 s on real sockets, on each runtime. Every case must
 * pass (see `_runner.ts` for the invariants). `WSSTREAM_FUZZ_SECONDS=N` sets
 * the total instead (60 % pipe, 40 % sockets); `WSSTREAM_FUZZ_SEED=S`
 * another seed. A failure prints the command that replays its case.
 *
 *     deno test -A tests/fuzz/fuzz_test.ts
 *     bun test ./tests/fuzz/fuzz_test.ts
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runtimeName } from "../../src/runtime.ts";
import type { Target } from "./_harness.ts";
import { formatFailure, fuzz } from "./_runner.ts";

function env(name: string): string | undefined {
  const g = globalThis as {
    Deno?: { env: { get(name: string): string | undefined } };
    process?: { env: Record<string, string | undefined> };
  };
  try {
    return g.Deno ? g.Deno.env.get(name) : g.process?.env[name];
  } catch {
    return undefined; // no --allow-env
  }
}

const SEED = Number(env("WSSTREAM_FUZZ_SEED") ?? 20_250_601) >>> 0;
const TOTAL = Number(env("WSSTREAM_FUZZ_SECONDS") ?? 0);
const SECONDS: Record<Target, number> = TOTAL > 0
  ? { pipe: TOTAL * 0.6, socket: TOTAL * 0.4 }
  : { pipe: 15, socket: 10 };
/** Fewer cases than this in the budget means the fuzzer did not really run. */
const MIN_CASES = 100;

describe(`fuzz on ${runtimeName()} (seed ${SEED})`, () => {
  for (const target of ["pipe", "socket"] as const) {
    test(
      `${target}: ${
        SECONDS[target]
      } s of fuzzed frames and handshakes against our server and client`,
      // The budget, plus time to finish the last case and shrink failures.
      { timeout: (SECONDS[target] + 60) * 1000 },
      async () => {
        const report = await fuzz({
          seed: SEED,
          seconds: { [target]: SECONDS[target] },
          sides: ["server", "client"],
        });
        const failures = report.failures.flatMap((f) => formatFailure(f, SEED));
        assert.deepEqual(
          failures,
          [],
          `fuzz failures:\n${failures.join("\n")}`,
        );
        const cases = report.cases[target] ?? 0;
        assert.ok(
          cases >= MIN_CASES,
          `only ${cases} cases ran in ${SECONDS[target]} s`,
        );
      },
    );
  }
});
