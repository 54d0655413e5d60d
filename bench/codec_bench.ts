/**
 * The codec micro-benchmarks for `deno bench` (`deno task bench:codec`),
 * which prints time per call; `bench/codec.ts` holds the cases and, run as a
 * script on Deno or Bun, prints GB/s and frames/s instead.
 *
 * @module
 */

import { codecCases } from "./codec.ts";

for (const codecCase of codecCases()) {
  // Fail at registration, not with a fast number for a kernel that is broken.
  codecCase.verify();
  Deno.bench({
    name: codecCase.name,
    group: codecCase.group,
    fn: () => codecCase.run(),
  });
}
