/**
 * The fuzzer's command line: `deno task fuzz`, or `bun tests/fuzz/main.ts`.
 *
 *     deno task fuzz --seconds 600                  # a long run, random seed
 *     deno task fuzz --seed 1234 --seconds 30       # a run that can be repeated
 *     deno task fuzz --seed 1234 --target pipe --case 77   # replay one case
 *
 * Flags:
 *
 * - `--seconds N` (default 60): the time budget, 60 % on the in-memory pipe
 *   and 40 % on real sockets when both run;
 * - `--seed S` (default random, printed): the run's seed;
 * - `--target pipe|socket|all` (default all);
 * - `--side server|client|all` (default all): which of our endpoints to feed;
 * - `--case I`: run only case I (of each target run), and say what it is;
 * - `--max-failures N` (default 3): stop a target after N failures;
 * - `--no-shrink`: report failures without looking for a smaller input.
 *
 * Exits with 1 when any case failed, 2 on bad flags.
 *
 * @module
 */
import { runtimeName } from "../../src/runtime.ts";
import type { Side } from "./_cases.ts";
import type { Target } from "./_harness.ts";
import { fuzz } from "./_runner.ts";

interface Flags {
  seconds: number;
  seed: number;
  targets: Target[];
  sides: Side[];
  only: number | undefined;
  maxFailures: number;
  shrink: boolean;
}

function args(): string[] {
  if (runtimeName() === "deno") return Deno.args;
  const process = (globalThis as { process?: { argv: string[] } }).process;
  return process?.argv.slice(2) ?? [];
}

function exit(code: number): never {
  if (runtimeName() === "deno") Deno.exit(code);
  return (globalThis as unknown as { process: { exit(code: number): never } })
    .process.exit(code);
}

function usage(problem: string): never {
  console.error(
    `${problem}\nusage: main.ts [--seconds N] [--seed S] [--target pipe|socket|all] [--side server|client|all] [--case I] [--max-failures N] [--no-shrink]`,
  );
  exit(2);
}

function parseFlags(argv: readonly string[]): Flags {
  const flags: Flags = {
    seconds: 60,
    seed: crypto.getRandomValues(new Uint32Array(1))[0]!,
    targets: ["pipe", "socket"],
    sides: ["server", "client"],
    only: undefined,
    maxFailures: 3,
    shrink: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i]!.split("=", 2) as [
      string,
      string | undefined,
    ];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${name} needs a value`);
      return v;
    };
    const integer = (text: string, min: number) => {
      const n = Number(text);
      if (!Number.isInteger(n) || n < min) {
        usage(`${name}: not an integer ≥ ${min}: ${text}`);
      }
      return n;
    };
    switch (name) {
      case "--seconds":
        flags.seconds = Number(value());
        if (!(flags.seconds > 0)) usage(`--seconds must be positive`);
        break;
      case "--seed":
        flags.seed = integer(value(), 0) >>> 0;
        break;
      case "--case":
        flags.only = integer(value(), 0);
        break;
      case "--target": {
        const v = value();
        if (v === "all") flags.targets = ["pipe", "socket"];
        else if (v === "pipe" || v === "socket") flags.targets = [v];
        else usage(`--target: pipe, socket or all, not ${v}`);
        break;
      }
      case "--side": {
        const v = value();
        if (v === "all") flags.sides = ["server", "client"];
        else if (v === "server" || v === "client") flags.sides = [v];
        else usage(`--side: server, client or all, not ${v}`);
        break;
      }
      case "--max-failures":
        flags.maxFailures = integer(value(), 1);
        break;
      case "--no-shrink":
        flags.shrink = false;
        break;
      default:
        usage(`unknown flag ${name}`);
    }
  }
  return flags;
}

const flags = parseFlags(args());
const both = flags.targets.length === 2;
const seconds: Partial<Record<Target, number>> = {};
for (const target of flags.targets) {
  seconds[target] = both
    ? flags.seconds * (target === "pipe" ? 0.6 : 0.4)
    : flags.seconds;
}
console.log(
  `fuzz on ${runtimeName()}: seed ${flags.seed}, ${
    flags.only === undefined ? `${flags.seconds} s` : `case ${flags.only}`
  }, targets ${flags.targets.join("+")}, sides ${flags.sides.join("+")}`,
);
const report = await fuzz({
  seed: flags.seed,
  seconds,
  sides: flags.sides,
  only: flags.only,
  maxFailures: flags.maxFailures,
  shrink: flags.shrink,
  log: (line) => console.log(line),
});
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
console.log(
  `\n${
    Object.entries(report.cases).map(([target, n]) => `${target}: ${n} cases`)
      .join(", ")
  }; ${report.failures.length} failed; rss ${mib(report.memory.first)} → peak ${
    mib(report.memory.peak)
  }; slowest case ${report.slowest?.ms.toFixed(0) ?? "-"} ms (${
    report.slowest ? `${report.slowest.target} ${report.slowest.index}` : "-"
  }); seed ${report.seed}`,
);
if (report.failures.length > 0) {
  console.log("\nFailed (details above; each command replays its case):");
  for (const f of report.failures) {
    console.log(
      `  ${f.target} case ${f.index}: ${f.problems[0]}\n    ${f.replay}`,
    );
  }
  exit(1);
}
exit(0);
