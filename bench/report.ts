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

/** Every target of the modes run, with its ratio and verdict. */
export function renderTargets(
  modes: readonly Mode[],
  samples: Sample[],
): string {
  const lines = [
    "| mode | system | target | ratio | met |",
    "| --- | --- | --- | ---: | --- |",
  ];
  for (const mode of modes) {
    for (const target of mode.targets) {
      const measured = samples.some((sample) =>
        sample.mode === mode.name && sample.system === target.system
      );
      if (!measured) continue;
      const { ratio, met } = verdict(mode, samples, target);
      lines.push(
        `| ${mode.name} | ${target.system} | ${targetText(target)} | ${
          ratioText(ratio)
        } | ${met} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The failures, for the end of the report. */
export function renderFailures(samples: Sample[]): string {
  const failed = samples.filter((sample) => sample.error !== undefined);
  if (failed.length === 0) return "";
  return failed.map((sample) =>
    `- run ${sample.run}, ${sample.mode}, ${sample.system}: ${
      sample.error!.split("\n").slice(0, 3).join(" / ")
    }`
  ).join("\n");
}
