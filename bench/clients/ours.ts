/**
 * Our client, as a user writes it: `connect()` from mod.ts, a `for await`
 * over `readable` that answers each echo with `await send()`. Runs on Deno
 * and on Bun: `deno run -A bench/clients/ours.ts --port P` or `bun ...`.
 *
 * @module
 */
import { connect } from "../../mod.ts";
import { fail } from "../_stats.mjs";
import { runEchoClient } from "./_echo_driver.mjs";

await runEchoClient("ours", async (url, onMessage) => {
  const connection = await connect(url);
  let closing = false;
  const reading = (async () => {
    for await (const message of connection) {
      if (typeof message === "string") fail("A text echo of a binary message");
      await onMessage(message);
    }
  })().catch((error) => {
    if (!closing) fail(`The connection failed: ${error}`);
  });
  return {
    send: (bytes) => connection.send(bytes),
    async close() {
      closing = true;
      await connection.close();
      await reading;
    },
  };
});
