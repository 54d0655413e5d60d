/**
 * Runs fuzz cases for a time budget per target and checks the invariants
 * that hold for every case:
 *
 * - the case's own checks (the oracles of `_frame_oracle.ts` and
 *   `_http_oracle.ts`) find nothing wrong;
 * - it finishes within its deadline (a watchdog; everything it opened is
 *   closed even when it overran);
 * - no uncaught exception and no unhandled rejection, anywhere;
 * - our server never reports an error of its own (`onError`) and forgets
 *   every connection once it closed; on the in-memory network, every
 *   transport (socket) of the case was let go of;
 * - memory stays bounded: the resident set may not grow more than
 *   {@link MEMORY_BOUND} past its peak during the first 500 cases (sampled
 *   every 50 cases).
 *
 * A failing case is reported with its seed, target and index (which replay
 * it: `deno task fuzz --seed S --target T --case I`), its inputs in hex and,
 * where the case allows, the smallest input found that still fails.
 *
 * @module
 */
import { toHex } from "../_frames.ts";
import { runtimeName } from "../../src/runtime.ts";
import { within } from "../_wait.ts";
import { type FuzzCase, makeCase, type Side } from "./_cases.ts";
import { Harness, type Target } from "./_harness.ts";
import type { Defer } from "./_sessions.ts";
import { shrinkInput } from "./_shrink.ts";

/** How far the resident set may grow over a run. */
export const MEMORY_BOUND = 200 * 1024 * 1024;
/** Cases run before the memory baseline is taken (the peak until then). */
const WARM_UP = 500;
/** The most one case may take. */
export const CASE_DEADLINE = 10_000;
/** How long shrinking one failure may take. */
const SHRINK_BUDGET = 15_000;

/** What to run. */
export interface FuzzOptions {
  seed: number;
  /** Seconds to spend on each target (a target not listed is not run). */
  seconds: Partial<Record<Target, number>>;
  /** Which of our endpoints to feed. */
  sides: readonly Side[];
  /** Run only this case index (on each target). */
  only?: number | undefined;
  /** Stop a target after this many failures (default 3). */
  maxFailures?: number | undefined;
  /** Look for a smaller failing input (default true). */
  shrink?: boolean | undefined;
  /** Progress and failures, line by line. */
  log?: ((line: string) => void) | undefined;
}

/** One failing case. */
export interface Failure {
  target: Target;
  index: number;
  side: Side;
  kind: string;
  mutation: string;
  problems: string[];
  inputs: { label: string; bytes: Uint8Array }[];
  /** The smallest failing input found, if shrinking found one. */
  shrunk: { label: string; bytes: Uint8Array; problems: string[] } | null;
  /** The command that replays the case. */
  replay: string;
}

/** What a run did. */
export interface FuzzReport {
  seed: number;
  runtime: string;
  cases: Partial<Record<Target, number>>;
  failures: Failure[];
  memory: { first: number; peak: number; last: number };
  slowest: { ms: number; target: Target; index: number } | null;
}

interface ProcessLike {
  on(event: string, listener: (value: unknown) => void): void;
  off(event: string, listener: (value: unknown) => void): void;
  memoryUsage(): { rss: number };
}

function processObject(): ProcessLike | null {
  return (globalThis as { process?: ProcessLike }).process ?? null;
}

/** The resident set size, in bytes. */
export function rss(): number {
  if (runtimeName() === "deno") return Deno.memoryUsage().rss;
  return processObject()?.memoryUsage().rss ?? 0;
}

/**
 * Calls `report` with every uncaught exception and unhandled rejection until
 * the returned function is called (which stops it).
 */
export function watchUncaught(report: (what: string) => void): () => void {
  const describe = (error: unknown) =>
    error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (runtimeName() === "bun") {
    const process = processObject()!;
    const onRejection = (reason: unknown) =>
      report(`unhandled rejection: ${describe(reason)}`);
    const onException = (error: unknown) =>
      report(`uncaught exception: ${describe(error)}`);
    process.on("unhandledRejection", onRejection);
    process.on("uncaughtException", onException);
    return () => {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
    };
  }
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    report(`unhandled rejection: ${describe(event.reason)}`);
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    report(`uncaught exception: ${describe(event.error)}`);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}

/**
 * Runs one case under its watchdog and closes what it opened (through
 * `defer`), even when it overran; returns the problems found.
 */
export async function runBounded(
  run: (defer: Defer) => Promise<string[]>,
): Promise<string[]> {
  const cleanups: (() => unknown)[] = [];
  const defer: Defer = (cleanup) => cleanups.push(cleanup);
  const work = run(defer).catch((error) => [
    `the case threw ${error instanceof Error ? error.stack : String(error)}`,
  ]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const problems = await Promise.race([
    work,
    new Promise<string[]>((resolve) => {
      timer = setTimeout(
        () => resolve([`the case did not finish within ${CASE_DEADLINE} ms`]),
        CASE_DEADLINE,
      );
    }),
  ]);
  clearTimeout(timer);
  for (const cleanup of cleanups.reverse()) {
    await within(CASE_DEADLINE, Promise.resolve(cleanup())).catch(() => {});
  }
  await within(CASE_DEADLINE, work).catch(() => {});
  return problems;
}

/**
 * What a case left behind: errors our server reported, connections it still
 * lists, transports still held.
 */
export async function serverProblems(h: Harness): Promise<string[]> {
  const problems = h.serverErrors.splice(0).map((error) =>
    `our server reported an error: ${
      error instanceof Error ? error.stack : String(error)
    }`
  );
  for (let i = 0; i < 50 && h.server.connections.size > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (h.server.connections.size > 0) {
    problems.push(
      `our server still lists ${h.server.connections.size} connection(s)`,
    );
  }
  for (let i = 0; i < 50 && h.heldTransports > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (h.heldTransports > 0) {
    problems.push(`${h.heldTransports} transport(s) left open after the case`);
    h.forgetHeldTransports();
  }
  return problems;
}

/** Looks for a smaller input that still fails (see `_shrink.ts`). */
async function shrink(
  c: FuzzCase,
  h: Harness,
): Promise<{ label: string; bytes: Uint8Array; problems: string[] } | null> {
  if (c.shrink === undefined) return null;
  const { input, withInput } = c.shrink;
  const { label, bytes } = c.inputs[input]!;
  const found = await shrinkInput(
    bytes,
    label.startsWith("frames") ? "frames" : "head",
    async (candidate) => {
      const problems = [
        ...(await runBounded((defer) => withInput(candidate).run(h, defer))),
        ...(await serverProblems(h)),
      ];
      return problems.length > 0 ? problems : null;
    },
    SHRINK_BUDGET,
  );
  return found === null ? null : { label, ...found };
}

/** Hex for a report: whole when short, else the start and the length. */
export function hexOf(bytes: Uint8Array, max = 2048): string {
  if (bytes.length <= max) return toHex(bytes) || "(empty)";
  return `${toHex(bytes.subarray(0, max))} … (${bytes.length} bytes in all)`;
}

/** A failure as lines of text. */
export function formatFailure(f: Failure, seed: number): string[] {
  const lines = [
    `FAIL ${f.target} case ${f.index} (seed ${seed}): our ${f.side}, ${f.kind}, ${f.mutation}`,
    ...f.problems.map((p) => `  - ${p}`),
    ...f.inputs.map((i) => `  ${i.label}: ${hexOf(i.bytes)}`),
  ];
  if (f.shrunk !== null) {
    lines.push(
      `  smallest failing ${f.shrunk.label} (${f.shrunk.bytes.length} bytes): ${
        hexOf(f.shrunk.bytes, 8192)
      }`,
      ...f.shrunk.problems.map((p) => `    - ${p}`),
    );
  }
  lines.push(`  replay: ${f.replay}`);
  return lines;
}

/** Runs the fuzzer. */
export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => {});
  const maxFailures = options.maxFailures ?? 3;
  const report: FuzzReport = {
    seed: options.seed,
    runtime: runtimeName(),
    cases: {},
    failures: [],
    memory: { first: rss(), peak: rss(), last: rss() },
    slowest: null,
  };
  const uncaught: string[] = [];
  const unwatch = watchUncaught((what) => uncaught.push(what));
  let baseline: number | null = null;
  let warmUpPeak = 0;
  try {
    for (const target of ["pipe", "socket"] as const) {
      const seconds = options.seconds[target];
      if (seconds === undefined) continue;
      const h = await Harness.open(target);
      const stop = performance.now() + seconds * 1000;
      let ran = 0;
      let failures = 0;
      let nextLog = performance.now() + 5_000;
      try {
        for (let index = options.only ?? 0;; index++) {
          if (options.only === undefined && performance.now() >= stop) break;
          if (options.only !== undefined && index !== options.only) break;
          const c = makeCase(options.seed, target, index);
          if (!options.sides.includes(c.side)) {
            if (options.only !== undefined) {
              log(`case ${index} feeds our ${c.side}: skipped by --side`);
            }
            continue;
          }
          const started = performance.now();
          const problems = [
            ...(await runBounded((defer) => c.run(h, defer))),
            ...(await serverProblems(h)),
          ];
          const ms = performance.now() - started;
          if (report.slowest === null || ms > report.slowest.ms) {
            report.slowest = { ms, target, index };
          }
          problems.push(
            ...uncaught.splice(0).map((u) =>
              `${u} (during or just before this case)`
            ),
          );
          ran++;
          if (ran % 50 === 0 || options.only !== undefined) {
            const now = rss();
            report.memory.last = now;
            report.memory.peak = Math.max(report.memory.peak, now);
            // The baseline is the peak of the warm-up (the first cases),
            // when the heap has grown to its working size.
            if (ran <= WARM_UP) warmUpPeak = Math.max(warmUpPeak, now);
            else baseline ??= warmUpPeak;
            if (baseline !== null && now - baseline > MEMORY_BOUND) {
              problems.push(
                `memory: resident set ${mib(now)} MiB, ${
                  mib(now - baseline)
                } MiB over the baseline (bound ${mib(MEMORY_BOUND)} MiB)`,
              );
            }
          }
          if (options.only !== undefined) {
            log(
              `${target} case ${index}: our ${c.side}, ${c.kind}, ${c.mutation}: ${
                problems.length === 0 ? "ok" : "FAILED"
              } in ${ms.toFixed(1)} ms`,
            );
          }
          if (problems.length > 0) {
            const failure: Failure = {
              target,
              index,
              side: c.side,
              kind: c.kind,
              mutation: c.mutation,
              problems,
              inputs: c.inputs,
              shrunk: options.shrink === false ? null : await shrink(c, h),
              replay:
                `deno task fuzz --seed ${options.seed} --target ${target} --case ${index}`,
            };
            uncaught.splice(0);
            report.failures.push(failure);
            for (const line of formatFailure(failure, options.seed)) log(line);
            if (++failures >= maxFailures) {
              log(`${target}: stopping after ${failures} failures`);
              break;
            }
          }
          if (performance.now() >= nextLog) {
            nextLog += 5_000;
            log(
              `${target}: ${ran} cases, ${failures} failures, rss ${
                mib(rss())
              } MiB`,
            );
          }
        }
      } finally {
        await h.close();
      }
      report.cases[target] = ran;
    }
  } finally {
    // Rejections of the last case surface after it.
    await new Promise((resolve) => setTimeout(resolve, 0));
    unwatch();
  }
  if (uncaught.length > 0) {
    report.failures.push({
      target: "pipe",
      index: -1,
      side: "server",
      kind: "run",
      mutation: "after the last case",
      problems: uncaught,
      inputs: [],
      shrunk: null,
      replay: `deno task fuzz --seed ${options.seed}`,
    });
  }
  report.memory.last = rss();
  return report;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(0);
}
