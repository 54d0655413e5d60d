/**
 * The systems the benchmark compares: servers (driven by the load
 * generator) and clients (each its own load program, against one fast
 * server). Each belongs to a row group whose reference its ratio is taken
 * against.
 *
 * @module
 */

import type { Argv } from "./process.ts";

const BENCH = new URL(".", import.meta.url).pathname;
const at = (path: string) => `${BENCH}${path}`;

/** Row groups: a group's rows are compared with its reference. */
export type Group = "deno" | "bun" | "node" | "ceiling";

/** A system under test. */
export interface System {
  /** Its name on the command line and in the tables. */
  name: string;
  /** What the tables call it. */
  label: string;
  group: Group;
  /** The program to run (a server, or a client with load options appended). */
  argv: Argv;
  /** Ours: the rows the targets are about. */
  ours?: boolean;
  /** A byte echo, not a WebSocket server: the load generator runs `--raw`. */
  raw?: boolean;
  /** The only modes it runs, when it cannot run them all (a floor). */
  modes?: readonly string[];
}

const deno = (path: string, ...flags: string[]): Argv => [
  "deno",
  "run",
  "-A",
  ...flags,
  at(path),
];
const bun = (path: string, ...flags: string[]): Argv => [
  "bun",
  ...flags,
  at(path),
];
const node = (path: string): Argv => ["node", at(path)];

/**
 * A checkout of an earlier commit to measure beside this one, in the same
 * run (`WSSTREAM_BENCH_BEFORE=/path/to/checkout`): its server and client
 * become the systems `ours-deno-before`, `ours-bun-before`,
 * `ours-deno-client-before` and `ours-bun-client-before`, so that a change's
 * before and after take turns like every other system.
 */
const BEFORE = Deno.env.get("WSSTREAM_BENCH_BEFORE");
const before = (path: string) => `${BEFORE}/bench/${path}`;
const BEFORE_SERVERS: System[] = BEFORE === undefined ? [] : [
  {
    name: "ours-deno-before",
    label: "wsstream on Deno, before",
    group: "deno",
    argv: ["deno", "run", "-A", before("servers/ours.ts")],
  },
  {
    name: "ours-bun-before",
    label: "wsstream on Bun, before",
    group: "bun",
    argv: ["bun", before("servers/ours.ts")],
  },
];
const BEFORE_CLIENTS: System[] = BEFORE === undefined ? [] : [
  {
    name: "ours-deno-client-before",
    label: "wsstream connect() on Deno, before",
    group: "deno",
    argv: ["deno", "run", "-A", before("clients/ours.ts")],
  },
  {
    name: "ours-bun-client-before",
    label: "wsstream connect() on Bun, before",
    group: "bun",
    argv: ["bun", before("clients/ours.ts")],
  },
];

/** The servers, in the order of the tables. */
export const SERVERS: readonly System[] = [
  {
    name: "deno-native",
    label: "Deno.serve + upgradeWebSocket",
    group: "deno",
    argv: deno("servers/deno_native.ts"),
  },
  {
    name: "ours-deno",
    label: "wsstream on Deno",
    group: "deno",
    argv: deno("servers/ours.ts"),
    ours: true,
  },
  {
    name: "ws-deno",
    label: "ws on Deno",
    group: "deno",
    argv: deno("servers/ws_server.mjs"),
  },
  {
    name: "bun-native",
    label: "Bun.serve websocket",
    group: "bun",
    argv: bun("servers/bun_native.ts"),
  },
  {
    name: "ours-bun",
    label: "wsstream on Bun",
    group: "bun",
    argv: bun("servers/ours.ts"),
    ours: true,
  },
  {
    name: "ws-bun",
    label: "ws on Bun",
    group: "bun",
    argv: bun("servers/ws_server.mjs"),
  },
  {
    name: "ours-bun-unread",
    label: "wsstream on Bun, a handler that never reads (floor)",
    group: "bun",
    argv: [...bun("servers/ours.ts"), "--unread"],
    modes: ["memory"],
  },
  {
    name: "bun-listen-floor",
    label: "Bun.listen answering the handshake only (floor)",
    group: "bun",
    argv: bun("servers/bun_listen_floor.ts"),
    modes: ["memory"],
  },
  {
    name: "deno-listen-floor",
    label: "Deno.listen answering the handshake only (floor)",
    group: "deno",
    argv: deno("servers/deno_listen_floor.ts"),
    modes: ["handshake"],
  },
  {
    name: "ws-node",
    label: "ws on Node",
    group: "node",
    argv: node("servers/ws_server.mjs"),
  },
  {
    name: "raw-echo",
    label: "TCP byte echo (load generator ceiling)",
    group: "ceiling",
    argv: bun("servers/raw_echo.ts"),
    raw: true,
  },
  ...BEFORE_SERVERS,
];

/** The server every client talks to. */
export const CLIENT_SERVER: System = SERVERS.find((system) =>
  system.name === "bun-native"
)!;

/** The clients, in the order of the tables. */
export const CLIENTS: readonly System[] = [
  {
    name: "deno-native-client",
    label: "Deno WebSocket",
    group: "deno",
    argv: deno("clients/native.ts"),
  },
  {
    name: "ours-deno-client",
    label: "wsstream connect() on Deno",
    group: "deno",
    argv: deno("clients/ours.ts"),
    ours: true,
  },
  {
    name: "bun-native-client",
    label: "Bun WebSocket",
    group: "bun",
    argv: bun("clients/native.ts"),
  },
  {
    name: "ours-bun-client",
    label: "wsstream connect() on Bun",
    group: "bun",
    argv: bun("clients/ours.ts"),
    ours: true,
  },
  {
    name: "ws-node-client",
    label: "ws client on Node",
    group: "node",
    argv: node("clients/ws_client.mjs"),
  },
  {
    name: "loadgen-client",
    label: "raw load generator (server ceiling)",
    group: "ceiling",
    argv: [...bun("loadgen.ts"), "--mode", "echo"],
  },
  ...BEFORE_CLIENTS,
];

/** The reference of each group, for servers and for clients. */
export const REFERENCES: Record<
  "server" | "client",
  Partial<Record<Group, string>>
> = {
  server: { deno: "deno-native", bun: "bun-native", node: "ws-node" },
  client: {
    deno: "deno-native-client",
    bun: "bun-native-client",
    node: "ws-node-client",
  },
};

/** The argv of `system` run with a CPU profiler writing into `dir`. */
export function profiled(system: System, dir: string): Argv {
  const [runtime, ...rest] = system.argv;
  if (runtime === "deno") {
    const [run, all, ...tail] = rest;
    return [
      runtime,
      run!,
      all!,
      "--cpu-prof",
      `--cpu-prof-dir=${dir}`,
      ...tail,
    ];
  }
  if (runtime === "bun") {
    return [runtime, "--cpu-prof", `--cpu-prof-dir=${dir}`, ...rest];
  }
  throw new Error(`Cannot profile ${system.name}: only Deno and Bun can`);
}
