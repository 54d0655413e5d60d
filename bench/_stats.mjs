// @ts-check
/**
 * What every load program (the raw load generator and the clients) shares:
 * a latency histogram, a FIFO of send times, the warm-up and measurement
 * window, and the one result line `bench/main.ts` reads. Plain JavaScript so
 * that Node runs it too (the `ws` client).
 *
 * @module
 */

import { readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";

/** Buckets below this many microseconds are 1 µs wide. */
const LINEAR = 64;
/** Sub-buckets per power of two above that: at most 1/32 (3 %) error. */
const SUB = 32;
const SUB_BITS = 5;
/** 2^6 .. 2^31 µs: 26 powers of two. */
const BUCKETS = LINEAR + 26 * SUB;

/**
 * A latency histogram over microseconds with log-linear buckets (as in
 * HdrHistogram): exact below 64 µs, within 3 % above, up to 35 minutes.
 * Recording is a few integer operations, so it never limits the load.
 */
export class LatencyHistogram {
  constructor() {
    /** @type {Float64Array} */
    this.counts = new Float64Array(BUCKETS);
    this.total = 0;
  }

  /**
   * Records one latency.
   * @param {number} ms the latency in milliseconds
   */
  record(ms) {
    let us = Math.round(ms * 1000);
    if (us < 0) us = 0;
    if (us > 0x7fffffff) us = 0x7fffffff;
    let index = us;
    if (us >= LINEAR) {
      const exponent = 31 - Math.clz32(us); // >= 6
      index = LINEAR + (exponent - 6) * SUB +
        ((us >>> (exponent - SUB_BITS)) & (SUB - 1));
    }
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.total++;
  }

  /**
   * The latency at a percentile, in ms (the middle of its bucket); NaN when
   * nothing was recorded.
   * @param {number} percent 0 to 100
   * @returns {number}
   */
  percentile(percent) {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil((percent / 100) * this.total));
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.counts[index] ?? 0;
      if (seen >= rank) return bucketMiddle(index) / 1000;
    }
    return bucketMiddle(BUCKETS - 1) / 1000;
  }
}

/**
 * The middle of a bucket, in µs.
 * @param {number} index
 * @returns {number}
 */
function bucketMiddle(index) {
  if (index < LINEAR) return index;
  const exponent = 6 + Math.floor((index - LINEAR) / SUB);
  const sub = (index - LINEAR) % SUB;
  const width = 2 ** (exponent - SUB_BITS);
  return (SUB + sub) * width + width / 2;
}

/**
 * A FIFO of send times for one connection: messages come back in the order
 * they were sent, so the oldest time belongs to the next echo.
 */
export class TimestampRing {
  /** @param {number} capacity the most messages in flight */
  constructor(capacity) {
    this.times = new Float64Array(capacity);
    this.head = 0;
    this.size = 0;
  }

  /** @param {number} time */
  push(time) {
    if (this.size === this.times.length) {
      throw new Error("More messages in flight than the ring holds");
    }
    this.times[(this.head + this.size) % this.times.length] = time;
    this.size++;
  }

  /** @returns {number} the oldest send time */
  shift() {
    if (this.size === 0) {
      throw new Error("An echo arrived for a message that was never sent");
    }
    const time = this.times[this.head] ?? 0;
    this.head = (this.head + 1) % this.times.length;
    this.size--;
    return time;
  }
}

/**
 * The timeline of one measurement: `warmup` seconds that are not counted,
 * then `seconds` that are. `measuring` is true in between; `running` turns
 * false at the end (stop sending).
 */
export class MeasureWindow {
  /**
   * @param {number} warmup seconds
   * @param {number} seconds seconds
   */
  constructor(warmup, seconds) {
    this.warmup = warmup;
    this.seconds = seconds;
    this.measuring = false;
    this.running = true;
    this.startedAt = 0;
    this.endedAt = 0;
    /** Seconds the warm-up lasted. */
    this.warmedFor = 0;
  }

  /**
   * Runs the window; `onStart` is called as counting starts (reset counters
   * there). With `ready`, the warm-up lasts until it also returns true
   * (checked every 10 ms). Resolves at the end.
   * @param {() => void} onStart
   * @param {() => boolean} [ready]
   * @returns {Promise<void>}
   */
  run(onStart, ready = () => true) {
    const began = performance.now();
    return new Promise((resolve) => {
      const start = () => {
        if (!ready()) return void setTimeout(start, 10);
        this.warmedFor = (performance.now() - began) / 1000;
        onStart();
        this.startedAt = performance.now();
        this.measuring = true;
        setTimeout(() => {
          this.measuring = false;
          this.running = false;
          this.endedAt = performance.now();
          resolve();
        }, this.seconds * 1000);
      };
      setTimeout(start, this.warmup * 1000);
    });
  }

  /** @returns {number} the measured seconds */
  elapsed() {
    return (this.endedAt - this.startedAt) / 1000;
  }
}

/**
 * CPU time of this process and, when `pid` is given, of another one (the
 * server, from /proc on Linux), in seconds; `cores()` turns two readings
 * into the fraction of a core each used in between.
 */
export class CpuMeter {
  /** @param {number} pid the server's process id, or 0 */
  constructor(pid) {
    this.pid = pid;
    this.start = this.read();
  }

  /** @returns {{ wall: number, self: number, selfWait: number, other: number, otherWait: number, otherSystem: number, otherFaults: number }} */
  read() {
    const usage = process.cpuUsage();
    const other = this.pid > 0 ? processStat(this.pid) : null;
    return {
      wall: performance.now() / 1000,
      self: (usage.user + usage.system) / 1e6,
      selfWait: runQueueSeconds(process.pid),
      otherWait: this.pid > 0 ? runQueueSeconds(this.pid) : NaN,
      other: other === null ? NaN : other.user + other.system,
      otherSystem: other === null ? NaN : other.system,
      otherFaults: other === null ? NaN : other.minorFaults,
    };
  }

  /** Starts a new interval. */
  reset() {
    this.start = this.read();
  }

  /**
   * Cores used since `reset()`; of the server's, the part in the kernel
   * (`serverSysCpu`), and the server's minor page faults (`serverMinflt`:
   * a server that maps fresh memory for each large message shows it here,
   * issue 16). `loadWait` and `serverWait`: time the process's threads were
   * runnable but waiting for a CPU, over the wall time (a busy machine shows
   * here: a side below 1 core is then starved, not idle).
   * @returns {{ loadCpu: number, serverCpu: number, loadWait: number, serverWait: number, serverSysCpu: number, serverMinflt: number }}
   */
  cores() {
    const end = this.read();
    const wall = end.wall - this.start.wall;
    return {
      loadCpu: (end.self - this.start.self) / wall,
      serverCpu: (end.other - this.start.other) / wall,
      loadWait: (end.selfWait - this.start.selfWait) / wall,
      serverWait: (end.otherWait - this.start.otherWait) / wall,
      serverSysCpu: (end.otherSystem - this.start.otherSystem) / wall,
      serverMinflt: end.otherFaults - this.start.otherFaults,
    };
  }
}

/**
 * A process's user and system CPU time in seconds and its minor page faults
 * (Linux, /proc/PID/stat); null when it cannot be read.
 * @param {number} pid
 * @returns {{ user: number, system: number, minorFaults: number } | null}
 */
function processStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) in parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      user: Number(fields[11]) / CLOCK_TICKS,
      system: Number(fields[12]) / CLOCK_TICKS,
      minorFaults: Number(fields[7]),
    };
  } catch {
    return null;
  }
}
/**
 * Seconds all of a process's threads spent runnable on a run queue, waiting
 * for a CPU (the second field of /proc/PID/task/TID/schedstat, in ns); NaN
 * when it cannot be read.
 * @param {number} pid
 * @returns {number}
 */
function runQueueSeconds(pid) {
  try {
    let total = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        const fields = readFileSync(
          `/proc/${pid}/task/${task}/schedstat`,
          "utf8",
        )
          .split(" ");
        total += Number(fields[1]);
      } catch {
        // The thread ended meanwhile.
      }
    }
    return total / 1e9;
  } catch {
    return NaN;
  }
}

/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/**
 * Prints the result line `bench/main.ts` looks for.
 * @param {Record<string, unknown>} result
 */
export function printResult(result) {
  console.log(`RESULT ${JSON.stringify(result)}`);
}

/**
 * Fails the program loudly: a benchmark whose peer misbehaved has no figure.
 * @param {string} message
 * @returns {never}
 */
export function fail(message) {
  console.error(`FAILED: ${message}`);
  process.exit(2);
}

/**
 * Reads `--name value` options; each default gives the option's type.
 * @template {Record<string, string | number | boolean>} T
 * @param {T} defaults
 * @returns {T}
 */
export function readOptions(defaults) {
  /** @type {Record<string, { type: "string" | "boolean" }>} */
  const spec = {};
  for (const [name, value] of Object.entries(defaults)) {
    spec[name] = { type: typeof value === "boolean" ? "boolean" : "string" };
  }
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: spec,
    strict: true,
  });
  /** @type {Record<string, string | number | boolean>} */
  const options = { ...defaults };
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue;
    if (typeof defaults[name] === "number") {
      const number = Number(value);
      if (!Number.isFinite(number)) {
        fail(`--${name} needs a number, got ${value}`);
      }
      options[name] = number;
    } else {
      options[name] = value;
    }
  }
  return /** @type {T} */ (options);
}

/**
 * Random bytes (not for security: a payload).
 * @param {number} size
 * @returns {Uint8Array}
 */
export function randomPayload(size) {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  }
  return bytes;
}
