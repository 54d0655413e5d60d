/**
 * `deno task bench:fanout`: publish fan-out on one process, one 64-byte
 * message to 1,000 and to 10,000 subscribers, in messages delivered per
 * second: our `PubSub.publish` (one frame for all) on Deno and on Bun,
 * against Bun's native `server.publish` and a loop over `ws` clients on
 * Node. The server is pinned to core 0 and the subscribers (raw TCP
 * sockets counting bytes, `bench/clients/fanout_reader.mjs` on Node) to
 * core 1; the systems take turns, and each figure is the median of the runs.
 *
 * ```sh
 * deno task bench:fanout              # 3 runs
 * deno task bench:fanout --runs 1 --subscribers 1000
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
    subscribers: { type: "string", default: "1000,10000" },
    /** Messages delivered per figure (M = total / N). */
    total: { type: "string", default: "2000000" },
  },
});
const runs = Number(args.values.runs);
const sizes = args.values.subscribers.split(",").map(Number);
const total = Number(args.values.total);

const SYSTEMS: { name: string; argv: string[] }[] = [
  {
    name: "ours (Deno)",
    argv: ["deno", "run", "-A", `${BENCH}servers/fanout_ours.ts`],
  },
  { name: "ours (Bun)", argv: ["bun", `${BENCH}servers/fanout_ours.ts`] },
  {
    name: "Bun native publish",
    argv: ["bun", `${BENCH}servers/fanout_bun_native.ts`],
  },
  { name: "ws loop (Node)", argv: ["node", `${BENCH}servers/fanout_ws.mjs`] },
];

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
Deno.addSignalListener("SIGINT", () => {
  void stopAll().then(() => Deno.exit(130));
});
try {
  for (let run = 0; run < runs; run++) {
    for (const n of sizes) {
      const m = Math.max(1, Math.round(total / n));
      // The order rotates from run to run.
      const order = SYSTEMS.map((_, i) => SYSTEMS[(i + run) % SYSTEMS.length]!);
      for (const system of order) {
        const key = `${system.name}\u0000${n}`;
        const server = await startServer(system.argv, pinning?.server ?? null);
        try {
          const result = await runForResult(
            [
              "node",
              `${BENCH}clients/fanout_reader.mjs`,
              String(server.port),
              String(n),
              String(m),
            ],
            pinning?.load ?? null,
            90_000,
          );
          const perSecond = Number(result.perSecond);
          (results.get(key) ?? results.set(key, []).get(key)!).push(perSecond);
          console.log(
            `${system.name}, ${n} subscribers × ${m}: ${
              perSecond.toLocaleString("en")
            } /s`,
          );
        } catch (error) {
          console.log(`${system.name}, ${n} subscribers: FAILED ${error}`);
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

const fmt = (x: number | undefined) =>
  x === undefined ? "failed" : `${(x / 1e6).toFixed(2)} M/s`;
console.log(
  `\n| system | ${
    sizes.map((n) => `${n.toLocaleString("en")} subscribers`).join(" | ")
  } |`,
);
console.log(`| --- | ${sizes.map(() => "---:").join(" | ")} |`);
for (const system of SYSTEMS) {
  const cells = sizes.map((n) => {
    const xs = results.get(`${system.name}\u0000${n}`);
    return fmt(xs && xs.length ? median(xs) : undefined);
  });
  console.log(`| ${system.name} | ${cells.join(" | ")} |`);
}
console.log(
  `\nmessages delivered per second, median of ${runs} run(s); pinned: ${
    pinning !== null
  }`,
);
