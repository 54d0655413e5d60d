/**
 * A test that may take longer than the runner's default: Bun's `node:test`
 * stops a test after 5 s whatever `bunfig.toml` says, unless the test passes
 * its own `timeout`. The body is bounded a little sooner, by `bounded`, so
 * it fails with its own message and cleans up first.
 */
import { test } from "node:test";
import { bounded } from "../_wait.ts";

/** Declares a `node:test` test bounded to `ms` milliseconds on every runtime. */
export function slowTest(
  name: string,
  ms: number,
  body: () => Promise<void>,
): void {
  test(name, { timeout: ms + 5_000 }, bounded(body, ms));
}
