/** Asserting how a connection closed, on the fields a test names. */
import assert from "node:assert/strict";

/**
 * Asserts that `actual` (a `CloseInfo`, or a part of one) has the fields of
 * `expected` with their values; fields `expected` leaves out (`sent`,
 * `received`, often) are not compared.
 */
export function assertClose(
  actual: unknown,
  expected: Record<string, unknown>,
  message?: string,
): void {
  assert.ok(
    actual !== null && typeof actual === "object",
    `not a close: ${actual}`,
  );
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(expected)) {
    picked[key] = (actual as Record<string, unknown>)[key];
  }
  assert.deepEqual(picked, expected, message);
}
