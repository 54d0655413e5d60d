/**
 * `deno task bench:deflate`: permessage-deflate's costs, our server (on Deno
 * and on Bun) against Bun's native server and `ws` on Node, each with
 * permessage-deflate on:
 *
 * - **memory**: the server's resident memory (VmRSS) growth per idle
 *   connection that agreed on permessage-deflate and exchanged one
 *   compressible 2 KiB message, with context takeover and without
 *   (`bench/clients/deflate_idle.mjs`, `ws` on Node);
 * - **echo**: compressed echoes per second of a compressible 64 KiB text
 *   message over a few connections with context takeover
 *   (`bench/clients/deflate_echo.mjs`, `ws` on Node).
 *
 * The server is pinned to core 0 and the client to core 1; the systems take
 * turns, each figure is the median of the runs, and each row says what the
 * server agreed (the `Sec-WebSocket-Extensions` the client got).
 *
 * ```sh
 * deno task bench:deflate                      # 3 runs, 1,000 idle connections, 5 s echoes
 * deno task bench:deflate --runs 1 --connections 100 --seconds 1 --warmup 0.5   # smoke
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { median } from "./report.ts";
import {
  detectPinning,
  runForResult,
  startServer,
  stopAll,
} from "./process.ts";

const BENCH = new URL(".", import.meta.url).pathname;
const args = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    /** Idle connections of the memory figures. */
    connections: { type: "string", default: "1000" },
    /** Measured seconds of each echo figure. */
    seconds: { type: "string", default: "5" },
    /** Unmeasured seconds before them. */
    warmup: { type: "string", default: "1" },
    /** Connections echoing at once. */
    concurrency: { type: "string", default: "4" },
    /** Which figures: memory, echo or both. */
    figures: { type: "string", default: "memory,echo" },
  },
});
const positive = (name: string, value: string) => {
  const number = Number(value);
  if (!(number > 0)) {
    throw new RangeError(`--${name} must be a positive number, got ${value}`);
  }
  return number;
};
const runs = positive("runs", args.values.runs);
const connections = positive("connections", args.values.connections);
const seconds = positive("seconds", args.values.seconds);
const warmup = Number(args.values.warmup);
const concurrency = positive("concurrency", args.values.concurrency);
const figures = args.values.figures.split(",");
for (const figure of figures) {
  if (figure !== "memory" && figure !== "echo") {
    throw new RangeError(`--figures takes memory and echo, got ${figure}`);
  }
}

type Mode = "takeover" | "no-takeover";
const SYSTEMS: { name: string; argv: (mode: Mode) => string[] }[] = [
  {
    name: "ours (Deno)",
    argv: (mode) => [
      "deno",
      "run",
      "-A",
      `${BENCH}servers/deflate_ours.ts`,
      mode,
    ],
  },
  {
    name: "ours (Bun)",
    argv: (mode) => ["bun", `${BENCH}servers/deflate_ours.ts`, mode],
  },
  {
    name: "Bun native",
    argv: (mode) => ["bun", `${BENCH}servers/deflate_bun_native.ts`, mode],
  },
  {
    name: "ws (Node)",
    argv: (mode) => ["node", `${BENCH}servers/deflate_ws.mjs`, mode],
  },
];

/** One figure of the table: a column, how it is measured and shown. */
interface Column {
  key: string;
  header: string;
  mode: Mode;
  measure(port: number, pid: number): string[];
  value(result: Record<string, unknown>): number;
  show(value: number): string;
}
const COLUMNS: Column[] = [];
if (figures.includes("memory")) {
  for (const mode of ["takeover", "no-takeover"] as const) {
    COLUMNS.push({
      key: `memory ${mode}`,
      header: `KiB per idle connection, ${mode}`,
      mode,
      measure: (port, pid) => [
        "node",
        `${BENCH}clients/deflate_idle.mjs`,
        String(port),
        String(pid),
        String(connections),
        mode,
      ],
      value: (result) => Number(result.perConnectionKiB),
      show: (value) => value.toFixed(1),
    });
  }
}
if (figures.includes("echo")) {
  COLUMNS.push({
    key: "echo",
    header: "64 KiB echoes/s, takeover",
    mode: "takeover",
    measure: (port) => [
      "node",
      `${BENCH}clients/deflate_echo.mjs`,
      String(port),
      String(seconds),
      String(warmup),
      String(concurrency),
    ],
    value: (result) => Number(result.perSecond),
    show: (value) => value.toFixed(0),
  });
}

try {
  await Deno.stat(`${BENCH}node_modules/ws/package.json`);
} catch {
  const { success } = await new Deno.Command("npm", {
    args: ["ci", "--no-audit", "--no-fund"],
    cwd: BENCH,
    stdout: "null",
  }).output();
  if (!success) throw new Error("npm ci failed in bench/");
}

const pinning = await detectPinning();
const results = new Map<string, number[]>();
/** What each system agreed, per column (the last run's). */
const agreed = new Map<string, string>();
Deno.addSignalListener("SIGINT", () => {
  void stopAll().then(() => Deno.exit(130));
});
try {
  for (let run = 0; run < runs; run++) {
    for (const column of COLUMNS) {
      // The order rotates from run to run.
      const order = SYSTEMS.map((_, i) => SYSTEMS[(i + run) % SYSTEMS.length]!);
      for (const system of order) {
        const key = `${system.name}\u0000${column.key}`;
        // A fresh server for every figure: the memory ones start from its
        // baseline, and no figure inherits another's heap.
        const server = await startServer(
          system.argv(column.mode),
          pinning?.server ?? null,
        );
        try {
          const result = await runForResult(
            column.measure(server.port, server.pid),
            pinning?.load ?? null,
            120_000,
          );
          const value = column.value(result);
          (results.get(key) ?? results.set(key, []).get(key)!).push(value);
          agreed.set(key, String(result.extensions));
          console.log(
            `${system.name}, ${column.header}: ${column.show(value)} (${
              result.extensions || "no extension"
            })`,
          );
        } catch (error) {
          console.log(`${system.name}, ${column.header}: FAILED ${error}`);
        } finally {
          const stderr = await server.stop();
          if (stderr.trim()) {
            console.log(`  stderr: ${stderr.trim().slice(0, 200)}`);
          }
        }
      }
    }
  }
} finally {
  await stopAll();
}

console.log(`\n| system | ${COLUMNS.map((c) => c.header).join(" | ")} |`);
console.log(`| --- | ${COLUMNS.map(() => "---:").join(" | ")} |`);
for (const system of SYSTEMS) {
  const cells = COLUMNS.map((column) => {
    const xs = results.get(`${system.name}\u0000${column.key}`);
    return xs && xs.length ? column.show(median(xs)) : "failed";
  });
  console.log(`| ${system.name} | ${cells.join(" | ")} |`);
}
console.log("\nagreed (Sec-WebSocket-Extensions of the 101):");
for (const system of SYSTEMS) {
  for (const column of COLUMNS) {
    const header = agreed.get(`${system.name}\u0000${column.key}`);
    if (header !== undefined) {
      console.log(`- ${system.name}, ${column.key}: ${header || "none"}`);
    }
  }
}
console.log(
  `\nmedian of ${runs} run(s); ${connections} idle connections; echoes over ${seconds} s after ${warmup} s, ${concurrency} connections; pinned: ${
    pinning !== null
  }`,
);
