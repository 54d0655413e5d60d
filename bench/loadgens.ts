/**
 * The two load generators that drive the servers (issue 16): `js`,
 * `loadgen.ts` on Bun, and `c`, `loadgen.c` built with the system compiler
 * into `bench/out/` on first use. Both take the same options and print the
 * same `RESULT` line; every server row is measured by each, taking turns, so
 * that no figure rests on one generator's sockets.
 *
 * @module
 */

import type { Argv } from "./process.ts";

const BENCH = new URL(".", import.meta.url).pathname;
const SOURCE = `${BENCH}loadgen.c`;
const BINARY = `${BENCH}out/loadgen-c`;

/** A load generator's name on the command line and in the tables. */
export type Loadgen = "js" | "c";

/** Every generator, in the order of the tables. */
export const LOADGENS: readonly Loadgen[] = ["js", "c"];

/** What the tables call each generator. */
export const LOADGEN_LABELS: Record<Loadgen, string> = {
  js: "loadgen.ts (Bun)",
  c: "loadgen.c (epoll)",
};

/** The command of each generator (options are appended). */
export const LOADGEN_ARGV: Record<Loadgen, Argv> = {
  js: ["bun", `${BENCH}loadgen.ts`],
  c: [BINARY],
};

/**
 * Whether a generator can run a mode: the memory mode (`--mode idle`) is
 * loadgen.ts only (it reads the server's RSS; nothing about it depends on
 * how fast the generator's sockets are).
 *
 * @param loadgen the generator
 * @param loadMode the mode's `load.mode` (echo, handshake, idle)
 * @returns true when it runs the mode
 */
export function runsMode(loadgen: Loadgen, loadMode: unknown): boolean {
  return loadgen === "js" || loadMode !== "idle";
}

/**
 * Reads `--loadgen js,c`.
 *
 * @param list the option's value, or undefined for both
 * @returns the generators, in table order
 */
export function parseLoadgens(list: string | undefined): Loadgen[] {
  if (list === undefined) return [...LOADGENS];
  const names = list.split(",").map((name) => name.trim());
  for (const name of names) {
    if (!LOADGENS.includes(name as Loadgen)) {
      throw new RangeError(
        `Unknown load generator ${name}: use ${LOADGENS.join(", ")}`,
      );
    }
  }
  return LOADGENS.filter((name) => names.includes(name));
}

/**
 * Builds `bench/out/loadgen-c` from `bench/loadgen.c` with `cc -O2` when it
 * is missing or older than its source.
 *
 * @returns once the binary is there
 */
export async function buildLoadgenC(): Promise<void> {
  const source = await Deno.stat(SOURCE);
  const binary = await Deno.stat(BINARY).catch(() => null);
  if (
    binary !== null && binary.mtime !== null && source.mtime !== null &&
    binary.mtime >= source.mtime
  ) return;
  await Deno.mkdir(`${BENCH}out`, { recursive: true });
  const compiler = Deno.env.get("CC") ?? "cc";
  console.log(`Building ${BINARY} (${compiler} -O2) …`);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(compiler, {
      args: ["-O2", "-Wall", "-o", BINARY, SOURCE],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        `The C load generator needs a C compiler: "${compiler}" was not found (install gcc or clang, set CC, or run with --loadgen js)`,
      );
    }
    throw error;
  }
  if (!output.success) {
    throw new Error(`${compiler} failed to build ${SOURCE}`);
  }
}
