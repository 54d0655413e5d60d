/**
 * A trivial TCP byte echo on Bun: every byte read is written back. Against it
 * the load generator shows its own ceiling (it sends masked frames, so they
 * come back masked: `loadgen.ts --raw`). Prints its port, serves until killed.
 *
 * @module
 */
import process from "node:process";
import { type BunSocket, requireBun } from "../_bun_api.ts";

/** Bytes the kernel did not take yet; reading pauses while there are any. */
type Pending = Uint8Array[];

function flush(socket: BunSocket<Pending>): void {
  const pending = socket.data;
  while (pending.length > 0) {
    const bytes = pending[0]!;
    const written = socket.write(bytes);
    if (written < 0) return;
    if (written < bytes.length) {
      pending[0] = bytes.subarray(written);
      return;
    }
    pending.shift();
  }
  socket.resume();
}

const server = requireBun().listen<Pending>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    binaryType: "uint8array",
    open: (socket) => {
      socket.data = [];
      socket.setNoDelay(true);
    },
    data(socket, bytes) {
      if (socket.data.length > 0) {
        socket.data.push(bytes);
        return;
      }
      const written = socket.write(bytes);
      if (written >= 0 && written < bytes.length) {
        socket.data.push(bytes.subarray(written));
        socket.pause(); // until the peer reads: TCP flow control
      }
    },
    drain: flush,
  },
});
console.log(server.port);
process.on("SIGTERM", () => process.exit(0));
