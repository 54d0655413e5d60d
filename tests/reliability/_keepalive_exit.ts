/**
 * A child script: two connections over a pipe, the server one with the
 * default keepalive (a ping every 30 s), closed at once. It prints "closed";
 * the process must then exit by itself, with no keepalive timer left behind.
 *
 * @module
 */
import { takeover } from "../../mod.ts";
import { pipe } from "../_pipe.ts";

const [a, b] = pipe();
const server = takeover(a, { role: "server" }); // keepalive on by default
const client = takeover(b, { role: "client", keepalive: { interval: 20_000 } });
await Promise.all([server.close(), client.closed]);
console.log("closed");
