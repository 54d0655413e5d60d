/**
 * Runs a script in a child process of the CURRENT runtime (`deno run -A`
 * with `--expose-gc` on Deno, `bun` on Bun), with its stdout read line by
 * line and its stdin open for commands.
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { runtimeName } from "../../src/runtime.ts";
import { Inbox } from "../interop/_harness.ts";

/** A running child script. */
export interface ChildScript {
  /** Its stdout, one line at a time (without the newline). */
  lines: Inbox<string>;
  /** Its stderr so far. */
  stderr(): string;
  /** Writes `text` to its stdin. */
  write(text: string): void;
  /** Kills it (SIGKILL) if it is still running. */
  kill(): void;
  /** Its exit code (`null` when a signal ended it), once it exited. */
  exited: Promise<number | null>;
}

/** The command that runs `script` on this runtime, with `args`. */
export function scriptCommand(script: string, args: string[]): string[] {
  return runtimeName() === "deno"
    ? [process.execPath, "run", "-A", "--v8-flags=--expose-gc", script, ...args]
    : [process.execPath, script, ...args];
}

/** Starts `script` (a `file:` URL) with `args`. */
export function runScript(script: URL, args: string[]): ChildScript {
  const [command, ...rest] = scriptCommand(
    decodeURIComponent(script.pathname),
    args,
  );
  const child = spawn(command!, rest, { stdio: ["pipe", "pipe", "pipe"] });
  const lines = new Inbox<string>();
  let partial = "";
  let errors = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (text: string) => {
    partial += text;
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) lines.push(line);
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => (errors += text));
  child.stdin!.on("error", () => {}); // it exited: nothing to tell it
  let ended = false;
  const exited = new Promise<number | null>((resolve) => {
    child.on("close", (code: number | null) => {
      ended = true;
      resolve(code);
    });
  });
  return {
    lines,
    stderr: () => errors,
    write: (text) => void child.stdin!.write(text),
    kill() {
      if (!ended) child.kill("SIGKILL");
    },
    exited,
  };
}
