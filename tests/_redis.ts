/**
 * A real `redis-server` for the tests, on a free port of 127.0.0.1, with
 * nothing saved to disk (`--save '' --appendonly no`); `stop()` ends it,
 * `restart()` stops and starts it on the same port. Tests skip when
 * `/usr/bin/redis-server` is absent (see `REDIS_SKIP`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { sleep } from "./_wait.ts";

export const REDIS_SERVER = "/usr/bin/redis-server";

/** Why the Redis tests skip, or `false` when they can run. */
export const REDIS_SKIP: string | false = existsSync(REDIS_SERVER)
  ? false
  : `${REDIS_SERVER} is absent (Debian's redis-server package): skipped`;

/** A free TCP port on 127.0.0.1 (free when asked). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** A running redis-server. */
export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
  restart(downMs?: number): Promise<void>;
}

/** Starts redis-server on a free port; resolves once it accepts connections. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    const proc = spawn(REDIS_SERVER, [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
    ], { stdio: "ignore" });
    child = proc;
    exited = new Promise((resolve) => proc.on("exit", () => resolve()));
    const deadline = Date.now() + 5000;
    while (!(await canConnect(port))) {
      if (Date.now() > deadline) throw new Error("redis-server did not start");
      await sleep(20);
    }
  };
  const stop = async () => {
    if (child === null) return;
    child.kill("SIGKILL");
    child = null;
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart(downMs = 300) {
      await stop();
      await sleep(downMs);
      await start();
    },
  };
}
