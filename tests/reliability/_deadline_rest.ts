/**
 * A child script: a deadline queue whose only deadline is deleted (its
 * timer then rests, unref'd), and a deadline set 50 ms later, from another
 * timer. That one must still expire on time, so the resting timer must keep
 * the process alive again; once it expired, nothing may. Prints
 * `expired KEY MS` for each expiry, MS after the start.
 *
 * @module
 */
import { DeadlineQueue } from "../../src/_deadline_queue.ts";

const start = performance.now();
const queue = new DeadlineQueue<string>(200, (key) => {
  console.log(`expired ${key} ${Math.round(performance.now() - start)}`);
});
queue.add("deleted");
queue.delete("deleted");
setTimeout(() => queue.add("kept"), 50);
