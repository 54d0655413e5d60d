/**
 * Runs an example program as a subprocess of the CURRENT runtime
 * (`deno run -A` on Deno, `bun run` on Bun), with its output read line by
 * line as it comes.
 */
import { requireBun } from "./_bun.ts";
import { Inbox, IS_DENO, within } from "./_harness.ts";

/** How a subprocess ended. */
export interface ExitStatus {
  /** The exit code; `null` when a signal ended it. */
  code: number | null;
  /** The signal that ended it, if one did. */
  signal: string | null;
}

/** A running example program. */
export interface Subprocess {
  /** Its stdout, one line at a time (without the newline). */
  lines: Inbox<string>;
  /** Every stdout line so far. */
  stdout: string[];
  /** Its stderr so far. */
  stderr(): string;
  /** Sends it a signal. */
  kill(signal: "SIGTERM" | "SIGINT" | "SIGKILL"): void;
  /** Settles once it exited and its output was read to the end. */
  exited: Promise<ExitStatus>;
}

/** Collects a stream's text; resolves once it ended. */
async function readText(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    onText(decoder.decode(chunk, { stream: true }));
  }
  onText(decoder.decode());
}

/**
 * Starts `examples/<name>` with `env` added to this process's environment.
 * The caller must await `exited` (killing it first if need be).
 */
export function runExample(
  name: string,
  env: Record<string, string>,
): Subprocess {
  const script = decodeURIComponent(
    new URL(`../../examples/${name}`, import.meta.url).pathname,
  );
  let stdout: ReadableStream<Uint8Array>;
  let stderr: ReadableStream<Uint8Array>;
  let status: Promise<ExitStatus>;
  let kill: (signal: "SIGTERM" | "SIGINT" | "SIGKILL") => void;
  if (IS_DENO) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    stdout = child.stdout;
    stderr = child.stderr;
    status = child.status.then(({ code, signal }) => ({
      // Deno reports 128 + n with the signal; keep only the signal then.
      code: signal === null ? code : null,
      signal,
    }));
    kill = (signal) => child.kill(signal);
  } else {
    const child = requireBun().spawn([
      globalThis.process.execPath,
      "run",
      script,
    ], {
      env: { ...globalThis.process.env, ...env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    stdout = child.stdout;
    stderr = child.stderr;
    status = child.exited.then(() => ({
      code: child.exitCode,
      signal: child.signalCode,
    }));
    kill = (signal) => child.kill(signal);
  }

  const lines = new Inbox<string>();
  const all: string[] = [];
  let partial = "";
  const readingStdout = readText(stdout, (text) => {
    partial += text;
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      all.push(line);
      lines.push(line);
    }
  });
  let errors = "";
  const readingStderr = readText(stderr, (text) => (errors += text));
  let ended = false;
  const exited = Promise.all([status, readingStdout, readingStderr]).then(
    ([status]) => {
      ended = true;
      return status;
    },
  );
  return {
    lines,
    stdout: all,
    stderr: () => errors,
    kill(signal) {
      if (ended) return;
      try {
        kill(signal);
      } catch {
        // It exited meanwhile (Deno throws then).
      }
    },
    exited,
  };
}

/** Waits for the exit, bounded; kills it (SIGKILL) when it takes too long. */
export async function waitForExit(
  child: Subprocess,
  ms: number,
): Promise<ExitStatus> {
  try {
    return await within(ms, child.exited, "the subprocess's exit");
  } catch (error) {
    child.kill("SIGKILL");
    await child.exited;
    throw error;
  }
}
