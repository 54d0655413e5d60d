/**
 * How corked frames reach the channel: a run of small frames as one write
 * (one syscall and, with Nagle off, one TCP segment, instead of one per
 * frame: most of the speed of small messages), a large frame as it is,
 * never copied.
 *
 * @module
 */

import type { ByteChannel } from "./byte_channel.ts";

/** Frames at least this large are written as they are, never copied. */
const COPY_LIMIT = 16 * 1024;

/**
 * Writes `frames` to `channel` in order, joining each run of frames under
 * 16 KiB into one write. Returns `false` if a write threw (the channel is
 * gone); the rest are then not written.
 */
export function writeFrames(
  frames: Uint8Array[],
  channel: ByteChannel,
): boolean {
  try {
    let run = 0; // bytes in the run of small frames before frames[i]
    let start = 0;
    for (let i = 0; i <= frames.length; i++) {
      const frame = frames[i];
      if (frame !== undefined && frame.length < COPY_LIMIT) {
        run += frame.length;
        continue;
      }
      if (i - start === 1) channel.write(frames[start]!);
      else if (i - start > 1) {
        const joined = new Uint8Array(run);
        for (let at = 0, j = start; j < i; j++) {
          joined.set(frames[j]!, at);
          at += frames[j]!.length;
        }
        channel.write(joined);
      }
      if (frame !== undefined) channel.write(frame);
      run = 0;
      start = i + 1;
    }
    return true;
  } catch {
    return false;
  }
}
