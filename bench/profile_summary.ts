/**
 * Summarises a V8/JSC `.cpuprofile` (from `deno run --cpu-prof` or
 * `bun --cpu-prof`): the functions with the most self time, and the same by
 * file, so a profile can be read in a terminal.
 *
 * ```sh
 * deno run -A bench/profile_summary.ts bench/out/profiles/echo64-ours-deno/CPU.*.cpuprofile --top 20
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}

/** The parts of the Chrome DevTools `.cpuprofile` format used here. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** One row of the summary: a function (or a file) and its self time. */
export interface SelfTime {
  name: string;
  location: string;
  ms: number;
  percent: number;
}

const ROOT = new URL("..", import.meta.url).href;
/** Time between samples beyond the sampling interval: waiting, or descheduled. */
const GAP = "(not sampled: waiting or descheduled)";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? 0;
}

function shortUrl(url: string): string {
  if (url === "") return "";
  const path = url.startsWith(ROOT) ? url.slice(ROOT.length) : url;
  return path.replace(/^file:\/\//, "");
}

/** Self time per function and per file, most first. */
export function selfTimes(profile: CpuProfile): {
  totalMs: number;
  functions: SelfTime[];
  files: SelfTime[];
} {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, SelfTime>();
  const byFile = new Map<string, SelfTime>();
  let total = 0;
  // Bun's profiler takes no samples while the thread waits for I/O, so a
  // long gap follows the last function before the wait: only one sampling
  // interval of it is that function's, the rest is a gap.
  const interval = median(profile.timeDeltas);
  const gap: ProfileNode = {
    id: -1,
    callFrame: {
      functionName: GAP,
      url: "",
      lineNumber: 0,
      columnNumber: 0,
    },
  };
  const add = (node: ProfileNode, micros: number) => {
    total += micros;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = shortUrl(url);
    const name = functionName || (url ? "(anonymous)" : "(native)");
    const location = file ? `${file}:${lineNumber + 1}` : "";
    const key = `${name} ${location}`;
    const entry = byFunction.get(key) ??
      { name, location, ms: 0, percent: 0 };
    entry.ms += micros / 1000;
    byFunction.set(key, entry);
    const fileKey = file || name;
    const fileEntry = byFile.get(fileKey) ??
      { name: fileKey, location: "", ms: 0, percent: 0 };
    fileEntry.ms += micros / 1000;
    byFile.set(fileKey, fileEntry);
  };
  // timeDeltas[i] is the time from sample i-1 to sample i: the time until
  // the next sample is spent where sample i is.
  for (let i = 0; i < profile.samples.length; i++) {
    const node = nodes.get(profile.samples[i]!);
    const micros = profile.timeDeltas[i + 1] ?? 0;
    if (node === undefined || micros <= 0) continue;
    if (micros > 3 * interval) {
      add(node, interval);
      add(gap, micros - interval);
    } else {
      add(node, micros);
    }
  }
  const sorted = (map: Map<string, SelfTime>) =>
    [...map.values()].map((entry) => ({
      ...entry,
      percent: total > 0 ? (entry.ms * 1000 * 100) / total : 0,
    })).sort((a, b) => b.ms - a.ms);
  return {
    totalMs: total / 1000,
    functions: sorted(byFunction),
    files: sorted(byFile),
  };
}

/** A markdown summary: the top functions and the top files by self time. */
export function renderSummary(profile: CpuProfile, top = 20): string {
  const { totalMs, functions, files } = selfTimes(profile);
  const idle = functions.filter((entry) =>
    entry.name === "(idle)" || entry.name === GAP
  )
    .reduce((sum, entry) => sum + entry.percent, 0);
  const rows = (entries: SelfTime[], withLocation: boolean) =>
    entries.slice(0, top).map((entry) =>
      `| ${entry.ms.toFixed(1)} | ${entry.percent.toFixed(1)} % | ${
        entry.name.replaceAll("|", "\\|")
      }${withLocation ? ` | ${entry.location}` : ""} |`
    );
  return [
    `Profiled ${(totalMs / 1000).toFixed(2)} s, idle or waiting ${
      idle.toFixed(1)
    } %.`,
    "",
    `Top ${top} functions by self time:`,
    "",
    "| self ms | self | function | where |",
    "| ---: | ---: | --- | --- |",
    ...rows(functions, true),
    "",
    "Top files by self time:",
    "",
    "| self ms | self | file |",
    "| ---: | ---: | --- |",
    ...rows(files, false).slice(0, 10),
  ].join("\n");
}

/** Reads a `.cpuprofile` file. */
export async function readProfile(path: string): Promise<CpuProfile> {
  return JSON.parse(await Deno.readTextFile(path));
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { top: { type: "string", default: "20" } },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    console.error(
      "Usage: deno run -A bench/profile_summary.ts FILE.cpuprofile [--top N]",
    );
    Deno.exit(2);
  }
  for (const path of positionals) {
    console.log(`## ${path}\n`);
    console.log(renderSummary(await readProfile(path), Number(values.top)));
    console.log();
  }
}
