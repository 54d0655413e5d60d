/**
 * Shrinking a failing input: the smallest input found that still fails, so
 * a report (and a regression test) carries only what matters.
 *
 * Frame streams shrink frame by frame first (drop a frame, shorten a
 * payload and rewrite its length), since cutting bytes out of a frame
 * mostly breaks its header and fails differently; heads shrink line by line.
 * Then single runs of bytes are cut out, in ever smaller pieces.
 *
 * @module
 */

/** Whether an input still fails: the problems, or `null`. */
export type Oracle = (bytes: Uint8Array) => Promise<string[] | null>;

/** The frames of a stream as byte ranges (headers read as they are, lies included). */
function frameUnits(bytes: Uint8Array): [number, number][] {
  const units: [number, number][] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const b1 = bytes[pos + 1];
    if (b1 === undefined) {
      units.push([pos, bytes.length]);
      break;
    }
    const len7 = b1 & 0x7f;
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const header = 2 + extra + (b1 & 0x80 ? 4 : 0);
    let length = len7;
    if (len7 === 126) {
      length = ((bytes[pos + 2] ?? 0) << 8) | (bytes[pos + 3] ?? 0);
    }
    if (len7 === 127) {
      length = 0;
      for (let i = 0; i < 8; i++) {
        length = length * 256 + (bytes[pos + 2 + i] ?? 0);
      }
    }
    const end = Math.min(bytes.length, pos + header + length);
    units.push([pos, end]);
    pos = end;
  }
  return units;
}

/**
 * The frame at `[start, end)` with its payload cut to a `fraction` of it (a
 * prefix) and its length rewritten; `null` when that changes nothing.
 */
function shortenFrame(
  bytes: Uint8Array,
  start: number,
  end: number,
  fraction: number,
): Uint8Array | null {
  const b1 = bytes[start + 1];
  if (b1 === undefined) return null;
  const len7 = b1 & 0x7f;
  const masked = (b1 & 0x80) !== 0;
  const header = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) +
    (masked ? 4 : 0);
  const payload = end - start - header;
  const keep = Math.floor(payload * fraction);
  if (payload <= 0 || keep >= payload) return null;
  // A prefix of a masked payload is the masked prefix: the key still fits.
  const key = masked
    ? bytes.subarray(start + header - 4, start + header)
    : new Uint8Array(0);
  const lengthBytes = keep < 126
    ? []
    : keep < 0x10000
    ? [keep >> 8, keep & 0xff]
    : [
      0,
      0,
      0,
      0,
      (keep >>> 24) & 0xff,
      (keep >>> 16) & 0xff,
      (keep >>> 8) & 0xff,
      keep & 0xff,
    ];
  const out = new Uint8Array(2 + lengthBytes.length + key.length + keep);
  out[0] = bytes[start]!;
  out[1] = (b1 & 0x80) | (keep < 126 ? keep : keep < 0x10000 ? 126 : 127);
  out.set(lengthBytes, 2);
  out.set(key, 2 + lengthBytes.length);
  out.set(
    bytes.subarray(start + header, start + header + keep),
    2 + lengthBytes.length + key.length,
  );
  return out;
}

function replace(
  bytes: Uint8Array,
  start: number,
  end: number,
  by: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(bytes.length - (end - start) + by.length);
  out.set(bytes.subarray(0, start));
  out.set(by, start);
  out.set(bytes.subarray(end), start + by.length);
  return out;
}

/** The lines of a head as byte ranges, each with its LF. */
function lineUnits(bytes: Uint8Array): [number, number][] {
  const units: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      units.push([start, i + 1]);
      start = i + 1;
    }
  }
  if (start < bytes.length) units.push([start, bytes.length]);
  return units;
}

/**
 * The smallest input found, within `budgetMs`, that `fails` still fails,
 * starting from `input` (which must fail).
 */
export async function shrinkInput(
  input: Uint8Array,
  kind: "frames" | "head",
  fails: Oracle,
  budgetMs: number,
): Promise<{ bytes: Uint8Array; problems: string[] } | null> {
  const deadline = performance.now() + budgetMs;
  let problems = await fails(input);
  if (problems === null) return null;
  let best = input;
  const attempt = async (candidate: Uint8Array) => {
    if (performance.now() > deadline) return false;
    const found = await fails(candidate);
    if (found === null) return false;
    best = candidate;
    problems = found;
    return true;
  };
  // Whole units (frames or lines), the last first.
  const units = kind === "frames" ? frameUnits : lineUnits;
  for (let i = units(best).length - 1; i >= 0; i--) {
    const unit = units(best)[i];
    if (unit !== undefined) {
      await attempt(replace(best, unit[0], unit[1], new Uint8Array(0)));
    }
  }
  // Shorter payloads.
  if (kind === "frames") {
    for (let i = 0; i < frameUnits(best).length; i++) {
      for (const fraction of [0, 0.5, 0.9]) {
        const [start, end] = frameUnits(best)[i] ?? [0, 0];
        const shorter = shortenFrame(best, start, end, fraction);
        if (
          shorter !== null &&
          (await attempt(replace(best, start, end, shorter)))
        ) break;
      }
    }
  }
  // Runs of bytes, halving.
  for (let size = best.length >> 1; size >= 1; size >>= 1) {
    for (let start = 0; start + size <= best.length;) {
      if (performance.now() > deadline) {
        return { bytes: best, problems: problems! };
      }
      if (
        !(await attempt(replace(best, start, start + size, new Uint8Array(0))))
      ) start += size;
    }
  }
  return { bytes: best, problems: problems! };
}
