/**
 * `deno task bench`: our server and client against the native ones and
 * `ws`, side by side in one run. Each measurement starts a fresh server
 * pinned to core 0 and the load program pinned to core 1; the systems take
 * turns (round-robin, the order rotating from run to run) and each figure is
 * the median over the runs, each ratio the median of the ratios measured in
 * the same run. Writes `bench/out/report.md` and `bench/out/results.json`.
 *
 * ```sh
 * deno task bench                      # everything, 3 runs (about 15 min)
 * deno task bench --quick              # one short run of everything
 * deno task bench --modes echo64,memory --systems ours-deno,deno-native
 * deno task bench --profile --modes echo64   # where our time goes
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Mode, MODES } from "./modes.ts";
import {
  type Argv,
  capture,
  detectPinning,
  type Pinning,
  runForResult,
  startServer,
  stopAll,
} from "./process.ts";
import {
  buildLoadgenC,
  type Loadgen,
  LOADGEN_ARGV,
  LOADGEN_LABELS,
  parseLoadgens,
  runsMode,
} from "./loadgens.ts";
import { readProfile, renderSummary } from "./profile_summary.ts";
import {
  ofLoadgen,
  renderCeiling,
  renderFailures,
  renderLoadgens,
  renderMode,
  renderTargets,
  type Sample,
} from "./report.ts";
import {
  CLIENT_SERVER,
  CLIENTS,
  profiled,
  SERVERS,
  type System,
} from "./systems.ts";

const BENCH = new URL(".", import.meta.url).pathname;
const OUT = `${BENCH}out/`;

const USAGE = `deno task bench [options]
  --runs N         runs, each measuring every system once (default 3)
  --seconds S      measured seconds per measurement (default 2)
  --warmup S       unmeasured seconds before (default 1)
  --modes a,b      ${MODES.map((mode) => mode.name).join(", ")}
  --systems x,y    ${[...SERVERS, ...CLIENTS].map((s) => s.name).join(", ")}
  --idle-conns N   connections of the memory mode (default 10000)
  --idle-warm N    handshakes before the memory mode measures, 100 at a time
                   (default 3000; 0: a freshly started server, no warm-up)
  --loadgen js,c   the load generators that drive the servers, taking turns
                   (default both; c: bench/loadgen.c, built with cc on first use)
  --quick          one short run of everything (smoke test)
  --profile        profile our server/client under the modes (default echo64)
                   with --cpu-prof, and print where the time goes`;

interface Options {
  runs: number;
  seconds: number;
  warmup: number;
  idleConns: number;
  idleWarm: number;
  modes: readonly Mode[];
  systems: Set<string> | null;
  loadgens: Loadgen[];
  profile: boolean;
}

function readOptions(): Options {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string" },
      seconds: { type: "string" },
      warmup: { type: "string" },
      "idle-conns": { type: "string" },
      "idle-warm": { type: "string" },
      modes: { type: "string" },
      systems: { type: "string" },
      loadgen: { type: "string" },
      quick: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const number = (value: string | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!(parsed > 0)) {
      throw new RangeError(`Expected a positive number: ${value}`);
    }
    return parsed;
  };
  const quick = values.quick;
  const names = (list: string | undefined) =>
    list === undefined ? null : new Set(list.split(",").map((s) => s.trim()));
  const modeNames = names(values.modes);
  for (const name of modeNames ?? []) {
    if (!MODES.some((mode) => mode.name === name)) {
      throw new RangeError(`Unknown mode ${name}\n${USAGE}`);
    }
  }
  const systems = names(values.systems);
  for (const name of systems ?? []) {
    if (![...SERVERS, ...CLIENTS].some((system) => system.name === name)) {
      throw new RangeError(`Unknown system ${name}\n${USAGE}`);
    }
  }
  const profile = values.profile;
  return {
    runs: number(values.runs, quick ? 1 : 3),
    seconds: number(values.seconds, quick ? 1 : 2),
    warmup: number(values.warmup, quick ? 0.5 : 1),
    idleConns: number(values["idle-conns"], quick ? 1000 : 10_000),
    // 0 is allowed: a fresh server, no warm-up (the figure a user sees first).
    idleWarm: values["idle-warm"] === "0"
      ? 0
      : number(values["idle-warm"], quick ? 300 : 3000),
    modes: MODES.filter((mode) =>
      modeNames === null
        ? !profile || mode.name === "echo64"
        : modeNames.has(mode.name)
    ),
    systems,
    loadgens: parseLoadgens(values.loadgen),
    profile,
  };
}

/** Installs `ws` (bench/package-lock.json) when it is missing. */
async function ensureDependencies(): Promise<void> {
  try {
    await Deno.stat(`${BENCH}node_modules/ws/package.json`);
    return;
  } catch {
    // Not installed yet.
  }
  console.log("Installing bench dependencies (npm ci in bench/) …");
  const { success } = await new Deno.Command("npm", {
    args: ["ci", "--no-audit", "--no-fund"],
    cwd: BENCH,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!success) throw new Error("npm ci failed in bench/");
}

/** The systems a mode runs, in table order. */
function systemsOf(mode: Mode, options: Options): System[] {
  const all = mode.side === "server" ? SERVERS : CLIENTS;
  return all.filter((system) =>
    (mode.ceiling || system.group !== "ceiling") &&
    (system.modes === undefined || system.modes.includes(mode.name)) &&
    (options.systems === null || options.systems.has(system.name))
  );
}

/** The generators that drive a server mode (js alone for the memory mode). */
function loadgensOf(mode: Mode, options: Options): Loadgen[] {
  if (mode.side !== "server") return ["js"];
  const loadgens = options.loadgens.filter((loadgen) =>
    runsMode(loadgen, mode.load.mode)
  );
  return loadgens.length > 0 ? loadgens : ["js"];
}

/** The load program's options for a mode. */
function loadArgs(
  mode: Mode,
  options: Options,
  port: number,
  pid: number,
): string[] {
  const load = { ...mode.load };
  if (mode.load.mode === "idle") {
    load.conns = options.idleConns;
    load.warm = options.idleWarm;
  }
  const args = ["--port", String(port), "--pid", String(pid)];
  for (const [name, value] of Object.entries(load)) {
    args.push(`--${name}`, String(value));
  }
  if (mode.timed) {
    args.push("--warmup", String(options.warmup));
    args.push("--seconds", String(options.seconds));
  }
  return args;
}

/** Runs one measurement: a fresh server, the load, the server stopped. */
async function measure(
  mode: Mode,
  system: System,
  options: Options,
  pinning: Pinning | null,
  loadgen: Loadgen,
  serverArgv?: Argv,
  loadArgv?: Argv,
): Promise<Record<string, unknown>> {
  const serverSystem = mode.side === "server" ? system : CLIENT_SERVER;
  const server = await startServer(
    serverArgv ?? serverSystem.argv,
    pinning?.server ?? null,
  );
  try {
    const args = loadArgs(mode, options, server.port, server.pid);
    const program = loadArgv ??
      (mode.side === "server" ? LOADGEN_ARGV[loadgen] : system.argv);
    if (mode.side === "server" && system.raw) args.push("--raw");
    const timeout = mode.timed
      ? (options.warmup + options.seconds) * 1000 + 90_000
      : 180_000;
    return await runForResult(
      [...program, ...args],
      pinning?.load ?? null,
      timeout,
    );
  } finally {
    await server.stop();
  }
}

function headline(mode: Mode, result: Record<string, unknown>): string {
  const value = result[mode.metric.key];
  return typeof value === "number"
    ? `${
      value.toLocaleString("en-US", {
        maximumFractionDigits: mode.metric.digits,
      })
    } ${mode.metric.header}`
    : "?";
}

async function machine(pinning: Pinning | null): Promise<string[]> {
  const lscpu = await capture("lscpu", []);
  const model = /^Model name:\s*(.*)$/m.exec(lscpu)?.[1] ?? "unknown CPU";
  const memory = /^MemTotal:\s*(\d+) kB/m.exec(
    await Deno.readTextFile("/proc/meminfo").catch(() => ""),
  )?.[1];
  return [
    `- CPU: ${model}, ${navigator.hardwareConcurrency} cores; memory ${
      memory ? `${(Number(memory) / 1024 / 1024).toFixed(0)} GiB` : "unknown"
    }; Linux ${await capture("uname", ["-r"])}`,
    `- Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), Bun ${await capture(
      "bun",
      [
        "--version",
      ],
    )}, Node ${await capture("node", ["--version"])}, ws ${
      JSON.parse(
        await Deno.readTextFile(`${BENCH}node_modules/ws/package.json`),
      ).version
    }`,
    `- Code: commit ${await capture("git", ["rev-parse", "--short", "HEAD"])}${
      (await capture("git", [
          "status",
          "--porcelain",
          "--",
          "src",
          "mod.ts",
        ])) === ""
        ? ""
        : " with uncommitted changes in src/"
    }`,
    pinning
      ? `- Pinning: servers on core ${pinning.server}, load generator and clients on core ${pinning.load} (taskset)`
      : "- Pinning: none (fewer than 2 cores or no taskset): figures are less reliable",
  ];
}

function renderReport(
  options: Options,
  samples: Sample[],
  header: string[],
  started: Date,
): string {
  const parts = [
    "# wsstream benchmark",
    "",
    `\`${
      ["deno task bench", ...Deno.args].join(" ")
    }\`, ${started.toISOString()}: ${options.runs} run(s), ${options.warmup} s warm-up + ${options.seconds} s measured per figure; medians over the runs, ratios are medians of per-run ratios.`,
    "",
    ...header,
    "",
    "## Targets",
    "",
    renderTargets(options.modes, samples, options.loadgens),
  ];
  for (const mode of options.modes) {
    const count = mode.load.mode === "idle"
      ? ` (${options.idleConns.toLocaleString("en-US")} connections)`
      : "";
    parts.push(
      "",
      `## ${mode.name}: ${mode.title}${count}`,
      "",
      `${mode.note}.`,
      "",
    );
    const systems = systemsOf(mode, options);
    const loadgens = loadgensOf(mode, options);
    if (loadgens.length > 1) {
      parts.push(
        "Both load generators, side by side (ratios: medians of same-run ratios to the reference under that generator; the last column: median over runs of the c figure over the js figure of the same system):",
        "",
        renderLoadgens(mode, systems, samples, loadgens),
        "",
      );
    }
    for (const loadgen of loadgens) {
      const mine = ofLoadgen(samples, loadgen);
      if (loadgens.length > 1) {
        parts.push(`### ${mode.name}, ${LOADGEN_LABELS[loadgen]}`, "");
      }
      parts.push(renderMode(mode, systems, mine));
      const ceiling = renderCeiling(mode, systems, mine);
      if (ceiling !== "") parts.push("", ceiling);
      parts.push("");
    }
    parts.pop();
  }
  const failures = renderFailures(samples);
  if (failures !== "") parts.push("", "## Failed measurements", "", failures);
  return parts.join("\n") + "\n";
}

async function benchmark(options: Options, pinning: Pinning | null) {
  const started = new Date();
  const header = await machine(pinning);
  const samples: Sample[] = [];
  const save = async () => {
    await Deno.mkdir(OUT, { recursive: true });
    const report = renderReport(options, samples, header, started);
    await Deno.writeTextFile(`${OUT}report.md`, report);
    await Deno.writeTextFile(
      `${OUT}results.json`,
      JSON.stringify(
        {
          started: started.toISOString(),
          args: Deno.args,
          machine: header,
          options: {
            ...options,
            systems: options.systems && [...options.systems],
            modes: options.modes.map((mode) => mode.name),
          },
          samples,
        },
        null,
        1,
      ),
    );
    return report;
  };
  onInterrupt = save;
  for (let run = 1; run <= options.runs; run++) {
    for (const mode of options.modes) {
      const systems = systemsOf(mode, options);
      // Round-robin, starting one further each run.
      const order = systems.map((_, i) =>
        systems[(i + run - 1) % systems.length]!
      );
      const loadgens = loadgensOf(mode, options);
      for (const [index, system] of order.entries()) {
        // The generators take turns too: which goes first alternates from
        // system to system and from run to run.
        const turn = loadgens.map((_, i) =>
          loadgens[(i + index + run - 1) % loadgens.length]!
        );
        for (const loadgen of mode.side === "server" ? turn : ["js" as const]) {
          const sample: Sample = { run, mode: mode.name, system: system.name };
          if (mode.side === "server") sample.loadgen = loadgen;
          const name = `${mode.name} ${system.name}${
            mode.side === "server" && loadgens.length > 1 ? ` (${loadgen})` : ""
          }`;
          try {
            sample.result = await measure(
              mode,
              system,
              options,
              pinning,
              loadgen,
            );
            console.log(
              `[run ${run}/${options.runs}] ${name}: ${
                headline(mode, sample.result)
              }`,
            );
          } catch (error) {
            sample.error = error instanceof Error
              ? error.message
              : String(error);
            console.log(
              `[run ${run}/${options.runs}] ${name}: FAILED ${
                sample.error.split("\n")[0]
              }`,
            );
          }
          samples.push(sample);
        }
      }
    }
    await save();
  }
  const report = await save();
  console.log(`\n${report}`);
  console.log(`Written: ${OUT}report.md, ${OUT}results.json`);
}

/**
 * Profiles our server (or client) under each mode, prints where the time
 * goes, and writes it all to `bench/out/profile.md`.
 */
async function profile(options: Options, pinning: Pinning | null) {
  const report: string[] = ["# Where our time goes", ""];
  const say = (text: string) => {
    console.log(text);
    report.push(text);
  };
  for (const mode of options.modes) {
    const ours = systemsOf(mode, { ...options, systems: null }).filter((
      system,
    ) =>
      system.ours &&
      (options.systems === null || options.systems.has(system.name))
    );
    for (const system of ours) {
      const dir = `${OUT}profiles/${mode.name}-${system.name}`;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.mkdir(dir, { recursive: true });
      const argv = profiled(system, dir);
      const result = mode.side === "server"
        ? await measure(mode, system, options, pinning, "js", argv)
        : await measure(mode, system, options, pinning, "js", undefined, argv);
      say(`## ${mode.name}, ${system.name} (${headline(mode, result)})\n`);
      const files = [];
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name.endsWith(".cpuprofile")) {
          files.push(`${dir}/${entry.name}`);
        }
      }
      if (files.length === 0) {
        say(`No profile was written in ${dir}\n`);
        continue;
      }
      say(`${files[0]}\n`);
      say(`${renderSummary(await readProfile(files[0]!), 20)}\n`);
    }
  }
  await Deno.writeTextFile(`${OUT}profile.md`, report.join("\n"));
  console.log(`Written: ${OUT}profile.md`);
}

let onInterrupt: (() => Promise<unknown>) | null = null;

async function main() {
  const options = readOptions();
  const interrupted = async () => {
    console.log("\nInterrupted: stopping every process …");
    await stopAll();
    await onInterrupt?.();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  try {
    await ensureDependencies();
    if (options.loadgens.includes("c")) await buildLoadgenC();
    const pinning = await detectPinning();
    if (options.profile) await profile(options, pinning);
    else await benchmark(options, pinning);
  } finally {
    await stopAll();
    Deno.removeSignalListener("SIGINT", interrupted);
    Deno.removeSignalListener("SIGTERM", interrupted);
  }
}

await main();
