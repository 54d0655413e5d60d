/**
 * The benchmark's modes: what load each one puts on which systems, which
 * figure it reports, and the targets (ratios to a reference measured in the
 * same run) that the issue sets for our rows.
 *
 * @module
 */

/** A figure of a load program's RESULT line, shown as a column. */
export interface Column {
  /** The RESULT field. */
  key: string;
  /** The column header. */
  header: string;
  /** Digits after the point. */
  digits: number;
  /** Multiplies the field first (e.g. KiB to MiB). */
  scale?: number;
}

/** A target: `system`'s figure over `reference`'s, in the same run. */
export interface Target {
  system: string;
  reference: string;
  /** What the table calls the reference. */
  referenceLabel: string;
  /** At least (`>=`, more is better) or at most (`<=`, memory). */
  op: ">=" | "<=";
  ratio: number;
}

/** One mode. */
export interface Mode {
  name: string;
  title: string;
  /** `server`: the load generator drives each server; `client`: each client drives one server. */
  side: "server" | "client";
  /** The load program's options (timing and ports are added). */
  load: Record<string, string | number>;
  /** The figure compared (the first column). */
  metric: Column;
  /** Whether more is better. */
  higherIsBetter: boolean;
  /** More figures, for context. */
  extra: Column[];
  /** Whether the load program runs for `--seconds` after a warm-up. */
  timed: boolean;
  /** The byte echo (the load generator's ceiling) is run too. */
  ceiling: boolean;
  targets: Target[];
  /** What limits it and how it is measured, one line for the report. */
  note: string;
}

const MSG_PER_SEC: Column = { key: "msgPerSec", header: "msg/s", digits: 0 };
const MB_PER_SEC: Column = { key: "mbPerSec", header: "MB/s", digits: 0 };
const LATENCY: Column[] = [
  { key: "p50Ms", header: "p50 ms", digits: 2 },
  { key: "p99Ms", header: "p99 ms", digits: 2 },
];
const CORES: Column[] = [
  { key: "serverCpu", header: "server cores", digits: 2 },
  { key: "loadCpu", header: "load cores", digits: 2 },
  // Summed over the process's threads, runnable but waiting for a CPU: other
  // work on the machine, or the process's own threads (JIT, GC) sharing its
  // one core. A side below 1 core with a wait here was starved, not idle
  // (issue 16).
  { key: "serverWait", header: "server waits for CPU", digits: 2 },
  { key: "loadWait", header: "load waits for CPU", digits: 2 },
];

/**
 * For large messages: the server's kernel share and its minor page faults
 * per message echoed (a server mapping fresh memory for every 16 MiB
 * message spends its time there, issue 16).
 */
const SERVER_MEMORY: Column[] = [
  { key: "serverSysCpu", header: "server sys cores", digits: 2 },
  { key: "serverMinfltPerMsg", header: "server faults/msg", digits: 0 },
];

const DENO_NATIVE = "Deno native";
const BUN_NATIVE = "Bun native";

const serverTargets = (deno: number, bun: number): Target[] => [
  {
    system: "ours-deno",
    reference: "deno-native",
    referenceLabel: DENO_NATIVE,
    op: ">=",
    ratio: deno,
  },
  {
    system: "ours-bun",
    reference: "bun-native",
    referenceLabel: BUN_NATIVE,
    op: ">=",
    ratio: bun,
  },
];

const clientTargets: Target[] = [
  {
    system: "ours-deno-client",
    reference: "deno-native-client",
    referenceLabel: "Deno WebSocket",
    op: ">=",
    ratio: 1,
  },
  {
    system: "ours-bun-client",
    reference: "bun-native-client",
    referenceLabel: "Bun WebSocket",
    op: ">=",
    ratio: 1,
  },
];

/** Every mode, in the order they run and are reported. */
export const MODES: readonly Mode[] = [
  {
    name: "echo1",
    title: "Echo, 1 connection × 64 in flight, 32 B messages",
    side: "server",
    load: { mode: "echo", conns: 1, inflight: 64, size: 32 },
    metric: MSG_PER_SEC,
    higherIsBetter: true,
    extra: [...LATENCY, ...CORES],
    timed: true,
    ceiling: true,
    targets: [],
    note: "messages echoed per second; latency from send to echo",
  },
  {
    name: "echo64",
    title: "Echo, 64 connections × 64 in flight, 32 B messages",
    side: "server",
    load: { mode: "echo", conns: 64, inflight: 64, size: 32 },
    metric: MSG_PER_SEC,
    higherIsBetter: true,
    extra: [...LATENCY, ...CORES],
    timed: true,
    ceiling: true,
    targets: [
      ...serverTargets(1.5, 0.33),
      {
        system: "ours-bun",
        reference: "ws-node",
        referenceLabel: "ws on Node",
        op: ">=",
        ratio: 3,
      },
    ],
    note: "messages echoed per second; latency from send to echo",
  },
  {
    name: "tp64k",
    title: "Throughput, 64 KiB messages, 1 connection × 16 in flight",
    side: "server",
    load: { mode: "echo", conns: 1, inflight: 16, size: 64 * 1024 },
    metric: MB_PER_SEC,
    higherIsBetter: true,
    extra: [...LATENCY, ...CORES, ...SERVER_MEMORY],
    timed: true,
    ceiling: true,
    targets: serverTargets(1.0, 0.9), // issue 16's bars
    note: "echoed payload, MB (10^6 bytes) per second",
  },
  {
    name: "tp16m",
    title: "Throughput, 16 MiB messages, 1 connection × 2 in flight",
    side: "server",
    // The warm-up also lasts until 64 messages (1 GiB) were echoed: a fresh
    // Deno.serve spends its first tens of 16 MiB messages in page faults
    // (bench/README.md, "Two load generators").
    load: {
      mode: "echo",
      conns: 1,
      inflight: 2,
      size: 16 * 1024 * 1024,
      "warmup-messages": 64,
    },
    metric: MB_PER_SEC,
    higherIsBetter: true,
    extra: [...LATENCY, ...CORES, ...SERVER_MEMORY],
    timed: true,
    ceiling: true,
    targets: serverTargets(1.0, 0.8),
    note: "echoed payload, MB (10^6 bytes) per second",
  },
  {
    name: "handshake",
    title:
      "Handshakes, 32 concurrent loops of connect, upgrade, close handshake, TCP close",
    side: "server",
    load: { mode: "handshake", conns: 32 },
    metric: { key: "perSec", header: "handshakes/s", digits: 0 },
    higherIsBetter: true,
    extra: [...LATENCY, ...CORES],
    timed: true,
    ceiling: false,
    targets: serverTargets(1.0, 0.8), // issue 16's bars
    note: "whole connections per second; latency of one whole connection",
  },
  {
    name: "memory",
    title: "Memory per idle connection",
    side: "server",
    load: { mode: "idle", conns: 10_000 },
    metric: { key: "perConnKiB", header: "KiB/conn", digits: 1 },
    higherIsBetter: false,
    extra: [
      {
        key: "rssBeforeKiB",
        header: "RSS before MiB",
        digits: 0,
        scale: 1 / 1024,
      },
      {
        key: "rssAfterKiB",
        header: "RSS after MiB",
        digits: 0,
        scale: 1 / 1024,
      },
      { key: "openSeconds", header: "open s", digits: 1 },
    ],
    timed: false,
    ceiling: false,
    targets: [
      {
        system: "ours-deno",
        reference: "deno-native",
        referenceLabel: DENO_NATIVE,
        op: "<=",
        ratio: 0.7,
      },
      {
        system: "ours-bun",
        reference: "bun-native",
        referenceLabel: BUN_NATIVE,
        op: "<=",
        ratio: 2,
      },
    ],
    note:
      "server resident memory (VmRSS) growth once the connections are open and it settled, over their count",
  },
  {
    name: "client-echo1",
    title: "Client echo, 1 connection × 64 in flight, 32 B, against Bun.serve",
    side: "client",
    load: { conns: 1, inflight: 64, size: 32 },
    metric: MSG_PER_SEC,
    higherIsBetter: true,
    extra: [...LATENCY, ...CORES],
    timed: true,
    ceiling: true,
    targets: clientTargets,
    note: "messages echoed per second, as the client sees them",
  },
  {
    name: "client-echo64",
    title:
      "Client echo, 64 connections × 64 in flight, 32 B, against Bun.serve",
    side: "client",
    load: { conns: 64, inflight: 64, size: 32 },
    metric: MSG_PER_SEC,
    higherIsBetter: true,
    extra: [...LATENCY, ...CORES],
    timed: true,
    ceiling: true,
    targets: clientTargets,
    note: "messages echoed per second, as the client sees them",
  },
  {
    name: "client-tp64k",
    title:
      "Client throughput, 64 KiB, 1 connection × 16 in flight, against Bun.serve",
    side: "client",
    load: { conns: 1, inflight: 16, size: 64 * 1024 },
    metric: MB_PER_SEC,
    higherIsBetter: true,
    extra: [...LATENCY, ...CORES],
    timed: true,
    ceiling: true,
    targets: clientTargets,
    note: "echoed payload, MB (10^6 bytes) per second",
  },
];
