/**
 * Child processes of the benchmark, each pinned to one core with
 * `taskset -c N` (when there are two cores and taskset): a server that
 * prints its port, and load programs whose `RESULT {json}` line is read.
 * Every child is tracked, so that `stopAll()` (on Ctrl-C, or after a failure)
 * leaves nothing running.
 *
 * @module
 */

/** A command: the program and its arguments. */
export type Argv = readonly string[];

const live = new Set<Deno.ChildProcess>();
/** Set by `stopAll()`: nothing new starts after it. */
let stopping = false;

/** How processes are pinned: `null` runs them unpinned. */
export interface Pinning {
  /** The server's core. */
  server: number;
  /** The load generator's (or client's) core. */
  load: number;
}

/** Pins to two cores when the machine has them and taskset exists. */
export async function detectPinning(): Promise<Pinning | null> {
  if (navigator.hardwareConcurrency < 2) return null;
  try {
    const { success } = await new Deno.Command("taskset", {
      args: ["-c", "0", "true"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? { server: 0, load: 1 } : null;
  } catch {
    return null;
  }
}

function spawn(argv: Argv, core: number | null): Deno.ChildProcess {
  if (stopping) throw new Error("Stopping: no new processes");
  const [program, ...args] = core === null
    ? argv
    : ["taskset", "-c", String(core), ...argv];
  const child = new Deno.Command(program!, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child);
  child.status.finally(() => live.delete(child));
  return child;
}

/** Keeps the last `limit` characters of a stream's text. */
async function tail(
  stream: ReadableStream<Uint8Array>,
  limit: number,
): Promise<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text = (text + chunk).slice(-limit);
  }
  return text;
}

/** A running server. */
export interface Server {
  /** Its process id (taskset execs the program, so it is the server's). */
  pid: number;
  /** The port it listens on. */
  port: number;
  /** Stops it (SIGTERM, then SIGKILL after 5 s); resolves with its stderr. */
  stop(): Promise<string>;
}

/** Starts a server and waits (up to 30 s) for the port on its first line. */
export async function startServer(
  argv: Argv,
  core: number | null,
): Promise<Server> {
  const child = spawn(argv, core);
  const stderr = tail(child.stderr, 4000);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  let port = NaN;
  try {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      buffered += value;
    }
    port = Number(buffered.split("\n")[0]!.trim());
  } finally {
    clearTimeout(timer);
  }
  // Drain the rest of stdout so the server never blocks on a full pipe.
  const draining = (async () => {
    while (!(await lines.read()).done);
  })().catch(() => {});
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited already */ }
    const killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }, 5_000);
    await child.status;
    clearTimeout(killer);
    await draining;
    return await stderr;
  };
  if (!(port > 0)) {
    const errors = await stop();
    throw new Error(
      `${argv.join(" ")} printed no port (${buffered.trim()}): ${errors}`,
    );
  }
  return { pid: child.pid, port, stop };
}

/** Runs a load program to the end (killed after `timeoutMs`); returns its RESULT. */
export async function runForResult(
  argv: Argv,
  core: number | null,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const child = spawn(argv, core);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [status, stdout, stderr] = await Promise.all([
    child.status,
    tail(child.stdout, 100_000),
    tail(child.stderr, 4000),
  ]).finally(() => clearTimeout(timer));
  const line = stdout.split("\n").find((text) => text.startsWith("RESULT "));
  if (!status.success || line === undefined) {
    const why = status.signal === "SIGKILL"
      ? `timed out after ${timeoutMs / 1000} s`
      : `exit ${status.code}`;
    throw new Error(`${argv.join(" ")}: ${why}\n${stderr.trim()}`);
  }
  return JSON.parse(line.slice("RESULT ".length));
}

/** Runs a command to the end and returns its stdout (empty on failure). */
export async function capture(program: string, args: Argv): Promise<string> {
  try {
    const { stdout } = await new Deno.Command(program, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(stdout).trim();
  } catch {
    return "";
  }
}

/** Kills every child still running and starts no more (Ctrl-C, the end). */
export async function stopAll(): Promise<void> {
  stopping = true;
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }
  await Promise.allSettled([...live].map((child) => child.status));
}
