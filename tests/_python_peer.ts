/**
 * A python `websockets` client as a peer for server tests: Debian's
 * `python3-websockets` under `/usr/bin/python3` (not the `python3` on PATH).
 * `PYTHON_PEER` is `null` when it is absent, and tests skip with that reason.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const PYTHON = "/usr/bin/python3";

/** Why the python peer cannot run, or `null` when it can. */
export const PYTHON_PEER_MISSING: string | null = (() => {
  if (!existsSync(PYTHON)) {
    return `${PYTHON} is absent (install Debian's python3-websockets)`;
  }
  const probe = spawnSync(PYTHON, ["-c", "import websockets"], {
    stdio: "ignore",
  });
  if (probe.status !== 0) {
    return `${PYTHON} has no websockets module (install python3-websockets)`;
  }
  return null;
})();

/** The script: connects, sends each message, prints what comes back as JSON lines. */
const SCRIPT = `
import asyncio, json, sys
import websockets

async def main():
    spec = json.loads(sys.argv[1])
    headers = spec.get("headers") or {}
    try:
        async with websockets.connect(
            spec["url"],
            subprotocols=spec.get("protocols") or None,
            origin=spec.get("origin"),
            extra_headers=headers,
            compression=None,
            open_timeout=5,
            close_timeout=5,
        ) as ws:
            print(json.dumps({"open": ws.subprotocol}), flush=True)
            for message in spec.get("send", []):
                if isinstance(message, dict):
                    await ws.send(bytes(message["binary"]))
                else:
                    await ws.send(message)
            for _ in range(spec.get("receive", 0)):
                got = await ws.recv()
                if isinstance(got, bytes):
                    print(json.dumps({"binary": list(got)}), flush=True)
                else:
                    print(json.dumps({"text": got}), flush=True)
            if spec.get("wait_close"):
                await ws.wait_closed()
        print(json.dumps({"closed": ws.close_code, "reason": ws.close_reason}), flush=True)
    except websockets.exceptions.InvalidStatusCode as error:
        print(json.dumps({"refused": error.status_code}), flush=True)
    except websockets.exceptions.InvalidHandshake as error:
        print(json.dumps({"invalid": str(error)}), flush=True)

asyncio.run(main())
`;

/** What the python peer is asked to do. */
export interface PythonPeerSpec {
  url: string;
  protocols?: string[];
  origin?: string;
  headers?: Record<string, string>;
  /** Strings go as text; `{ binary: [bytes] }` as binary. */
  send?: (string | { binary: number[] })[];
  /** How many messages to read back. */
  receive?: number;
  /** Wait for the server to close. */
  wait_close?: boolean;
}

/**
 * Runs the python peer once, bounded by `ms`.
 *
 * @returns The JSON lines it printed.
 */
export function runPythonPeer(
  spec: PythonPeerSpec,
  ms = 8_000,
): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ["-c", SCRIPT, JSON.stringify(spec)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk) => (err += chunk));
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`python peer timed out: ${out} ${err}`));
    }, ms);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`python peer exited ${code}: ${err}`));
        return;
      }
      resolve(
        out.split("\n").filter((line) => line !== "").map((line) =>
          JSON.parse(line)
        ),
      );
    });
  });
}
