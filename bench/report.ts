/**
 * The benchmark's report: per mode, each system's median figure over the
 * runs, its ratio to its group's reference (the median of the per-run
 * ratios: both measured in the same run), and whether our rows meet their
 * targets.
 *
 * @module
 */

import type { Column, Mode, Target } from "./modes.ts";
import { REFERENCES, type System } from "./systems.ts";

/** One measurement: a system under a mode in one run. */
export interface Sample {
  run: number;
  mode: string;
  system: string;
  /** The load program's RESULT, when it succeeded. */
  result?: Record<string, unknown>;
  /** Why it failed, when it did. */
  error?: string;
  /** The load generator that drove a server (none: a client row). */
  loadgen?: string;
}

/**
 * The samples one load generator measured, and every client sample (the
 * clients are their own load programs, the same under any generator).
 */
export function ofLoadgen(samples: Sample[], loadgen: string): Sample[] {
  return samples.filter((sample) => (sample.loadgen ?? loadgen) === loadgen);
}

/** The median; NaN for none. */
export function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[middle]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function figure(sample: Sample | undefined, key: string): number {
  const value = sample?.result?.[key];
  return typeof value === "number" ? value : NaN;
}

/** Index of one mode's samples: system name to run to sample. */
function byRun(
  mode: Mode,
  samples: Sample[],
): Map<string, Map<number, Sample>> {
  const index = new Map<string, Map<number, Sample>>();
  for (const sample of samples) {
    if (sample.mode !== mode.name || sample.result === undefined) continue;
    let runs = index.get(sample.system);
    if (runs === undefined) index.set(sample.system, runs = new Map());
    runs.set(sample.run, sample);
  }
  return index;
}

/** The median over runs of `system`'s figure divided by `reference`'s. */
export function medianRatio(
  mode: Mode,
  samples: Sample[],
  system: string,
  reference: string,
): number {
  const index = byRun(mode, samples);
  const ours = index.get(system) ?? new Map<number, Sample>();
  const theirs = index.get(reference) ?? new Map<number, Sample>();
  const ratios: number[] = [];
  for (const [run, sample] of ours) {
    const base = figure(theirs.get(run), mode.metric.key);
    if (base > 0) ratios.push(figure(sample, mode.metric.key) / base);
  }
  return median(ratios);
}

function format(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "—";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function cell(samples: Sample[], column: Column): string {
  const value = median(samples.map((sample) => figure(sample, column.key)));
  return format(value * (column.scale ?? 1), column.digits);
}

const ratioText = (ratio: number) =>
  Number.isFinite(ratio) ? `${format(ratio, 2)}×` : "—";

/** Whether a target is met: "yes", "no", or "n/a" without figures. */
export function verdict(mode: Mode, samples: Sample[], target: Target): {
  ratio: number;
  met: "yes" | "no" | "n/a";
} {
  const ratio = medianRatio(mode, samples, target.system, target.reference);
  if (!Number.isFinite(ratio)) return { ratio, met: "n/a" };
  const met = target.op === ">="
    ? ratio >= target.ratio
    : ratio <= target.ratio;
  return { ratio, met: met ? "yes" : "no" };
}

const targetText = (target: Target) =>
  `${target.op === ">=" ? "≥" : "≤"} ${target.ratio}× ${target.referenceLabel}`;

/** One mode's table, in markdown. */
export function renderMode(
  mode: Mode,
  systems: readonly System[],
  samples: Sample[],
): string {
  const references = REFERENCES[mode.side];
  // Shown where a target compares with ws on Node (the echo of Bun rows).
  const wsColumn = mode.targets.some((target) =>
    target.reference === "ws-node"
  );
  const headers = [
    "system",
    mode.metric.header,
    ...mode.extra.map((column) => column.header),
    "ratio (to its group's reference)",
    ...(wsColumn ? ["vs ws on Node"] : []),
    "runs",
    "target",
    "met",
  ];
  const lines = [
    `| ${headers.join(" | ")} |`,
    `|${
      headers.map((
        _,
        i,
      ) => (i === 0 || i >= headers.length - 2 ? " --- " : " ---: "))
        .join("|")
    }|`,
  ];
  for (const system of systems) {
    const mine = samples.filter((sample) =>
      sample.mode === mode.name && sample.system === system.name
    );
    const good = mine.filter((sample) => sample.result !== undefined);
    if (mine.length === 0) continue;
    const reference = references[system.group];
    let ratio = "—";
    if (reference === system.name) ratio = "1.00 (ref)";
    else if (reference !== undefined) {
      ratio = ratioText(medianRatio(mode, samples, system.name, reference));
    }
    let versusWs = "";
    if (wsColumn) {
      versusWs = system.group === "bun"
        ? ratioText(medianRatio(mode, samples, system.name, "ws-node"))
        : "";
    }
    const targets = mode.targets.filter((target) =>
      target.system === system.name
    );
    const verdicts = targets.map((target) => verdict(mode, samples, target));
    const row = [
      `${system.label} \`${system.name}\``,
      good.length > 0 ? cell(good, mode.metric) : "failed",
      ...mode.extra.map((column) => cell(good, column)),
      ratio,
      ...(wsColumn ? [versusWs] : []),
      `${good.length}/${mine.length}`,
      targets.map(targetText).join("; "),
      verdicts.map((v) => v.met).join("; "),
    ];
    lines.push(`| ${row.join(" | ")} |`);
  }
  return lines.join("\n");
}

/**
 * What the ceiling row says: for servers, the load generator's own ceiling
 * (its figure against the byte echo per core it used); for clients, the
 * server's (the raw load generator against it).
 */
export function renderCeiling(
  mode: Mode,
  systems: readonly System[],
  samples: Sample[],
): string {
  const ceiling = systems.find((system) => system.group === "ceiling");
  const mine = samples.filter((sample) =>
    sample.mode === mode.name && sample.system === ceiling?.name &&
    sample.result !== undefined
  );
  if (ceiling === undefined || mine.length === 0) return "";
  const unit = mode.metric.header;
  const reached = median(mine.map((sample) => figure(sample, mode.metric.key)));
  const perCore = median(
    mine.map((sample) =>
      figure(sample, mode.metric.key) / figure(sample, "loadCpu")
    ),
  );
  const digits = mode.metric.digits;
  return mode.side === "server"
    ? `Load generator ceiling: against the byte echo it reached ${
      format(reached, digits)
    } ${unit}, about ${
      format(perCore, digits)
    } ${unit} per core of its own CPU time. A row whose \`load cores\` is well below 1 was not limited by the load generator.`
    : `Server ceiling: the raw load generator drove the same server at ${
      format(reached, digits)
    } ${unit}; a client row below that is limited by the client.`;
}

/**
 * Every target of the modes run, with its ratio under each load generator
 * and its verdict: met only when every generator that measured it shows it
 * met (a claim must hold whoever measures it).
 */
export function renderTargets(
  modes: readonly Mode[],
  samples: Sample[],
  loadgens: readonly string[] = ["js"],
): string {
  const header = loadgens.length === 1
    ? ["ratio"]
    : loadgens.map((loadgen) => `ratio (${loadgen})`);
  const lines = [
    `| mode | system | target | ${header.join(" | ")} | met |`,
    `| --- | --- | --- | ${header.map(() => "---:").join(" | ")} | --- |`,
  ];
  for (const mode of modes) {
    for (const target of mode.targets) {
      const measured = samples.some((sample) =>
        sample.mode === mode.name && sample.system === target.system
      );
      if (!measured) continue;
      const verdicts = loadgens.map((loadgen) =>
        verdict(mode, ofLoadgen(samples, loadgen), target)
      );
      const shown = verdicts.filter((v) => v.met !== "n/a");
      const met = shown.length === 0
        ? "n/a"
        : shown.every((v) => v.met === "yes")
        ? "yes"
        : shown.every((v) => v.met === "no")
        ? "no"
        : `no (${
          loadgens.filter((_, i) => verdicts[i]!.met === "yes").join(", ")
        } only)`;
      lines.push(
        `| ${mode.name} | ${target.system} | ${targetText(target)} | ${
          verdicts.map((v) => ratioText(v.ratio)).join(" | ")
        } | ${met} |`,
      );
    }
  }
  return lines.join("\n");
}

/**
 * One server mode under every load generator, side by side: each system's
 * median figure and ratio to its reference per generator, and how the
 * generators' figures compare (the median over runs of c / js, measured in
 * the same run).
 */
export function renderLoadgens(
  mode: Mode,
  systems: readonly System[],
  samples: Sample[],
  loadgens: readonly string[],
): string {
  const references = REFERENCES[mode.side];
  const headers = [
    "system",
    ...loadgens.map((loadgen) => `${mode.metric.header} (${loadgen})`),
    ...loadgens.map((loadgen) => `ratio (${loadgen})`),
    ...loadgens.slice(1).map((loadgen) => `${loadgen} / ${loadgens[0]}`),
  ];
  const lines = [
    `| ${headers.join(" | ")} |`,
    `| --- |${headers.slice(1).map(() => " ---: ").join("|")}|`,
  ];
  const mine = samples.filter((sample) => sample.mode === mode.name);
  for (const system of systems) {
    const of = (loadgen: string) =>
      ofLoadgen(mine, loadgen).filter((sample) =>
        sample.system === system.name && sample.result !== undefined
      );
    if (loadgens.every((loadgen) => of(loadgen).length === 0)) continue;
    const reference = references[system.group];
    const ratios = loadgens.map((loadgen) =>
      reference === system.name
        ? "1.00 (ref)"
        : reference === undefined
        ? "—"
        : ratioText(
          medianRatio(
            mode,
            ofLoadgen(mine, loadgen),
            system.name,
            reference,
          ),
        )
    );
    const first = new Map(
      of(loadgens[0]!).map((sample) => [sample.run, sample]),
    );
    const between = loadgens.slice(1).map((loadgen) => {
      const per: number[] = [];
      for (const sample of of(loadgen)) {
        const base = figure(first.get(sample.run), mode.metric.key);
        if (base > 0) per.push(figure(sample, mode.metric.key) / base);
      }
      return ratioText(median(per));
    });
    lines.push(
      `| ${
        [
          `${system.label} \`${system.name}\``,
          ...loadgens.map((loadgen) => cell(of(loadgen), mode.metric)),
          ...ratios,
          ...between,
        ].join(" | ")
      } |`,
    );
  }
  return lines.join("\n");
}

/** The failures, for the end of the report. */
export function renderFailures(samples: Sample[]): string {
  const failed = samples.filter((sample) => sample.error !== undefined);
  if (failed.length === 0) return "";
  return failed.map((sample) =>
    `- run ${sample.run}, ${sample.mode}, ${sample.system}${
      sample.loadgen === undefined ? "" : ` (${sample.loadgen})`
    }: ${sample.error!.split("\n").slice(0, 3).join(" / ")}`
  ).join("\n");
}
