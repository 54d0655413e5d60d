/**
 * playwright-core for the browser tests, driving Debian's /usr/bin/chromium:
 * installed with `npm ci` (tests/browser/package.json) when missing, and
 * the little of its API the tests use. A test-only peer, never imported by
 * src/.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";

/** Debian's chromium package. */
export const CHROMIUM = "/usr/bin/chromium";
const here = decodeURIComponent(new URL(".", import.meta.url).pathname);

/** playwright-core, installed if need be; or why it cannot be had. */
export function playwright(): { chromium: Chromium } | string {
  if (!existsSync(CHROMIUM)) {
    return `${CHROMIUM} is absent (Debian's chromium package): skipped`;
  }
  if (!existsSync(`${here}node_modules/playwright-core/package.json`)) {
    const npm = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], {
      cwd: here,
      stdio: "ignore",
      timeout: 120_000,
    });
    if (npm.status !== 0) {
      return "npm ci in tests/browser/ failed (playwright-core): skipped";
    }
  }
  // Through require: Deno loads the package's CommonJS entry this way.
  return createRequire(`${here}package.json`)("playwright-core");
}

/** Launches headless Chromium. */
export function launch(chromium: Chromium): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox"],
    headless: true,
  });
}

// The little of playwright-core's API used by the tests.
/** playwright-core's `Locator`, in part. */
export interface Locator {
  allTextContents(): Promise<string[]>;
  count(): Promise<number>;
  fill(text: string): Promise<void>;
  click(): Promise<void>;
  press(key: string): Promise<void>;
  waitFor(options?: { timeout?: number }): Promise<void>;
  nth(index: number): Locator;
  textContent(): Promise<string | null>;
}
/** playwright-core's `Page`, in part. */
export interface Page {
  goto(url: string): Promise<unknown>;
  reload(): Promise<unknown>;
  getByTestId(id: string): Locator;
  waitForFunction(
    body: string,
    arg?: unknown,
    options?: { timeout?: number },
  ): Promise<unknown>;
  /** Evaluates a JavaScript expression in the page; awaits a promise. */
  evaluate(expression: string): Promise<unknown>;
}
/** playwright-core's `Browser`, in part. */
export interface Browser {
  /**
   * `bypassCSP`: let playwright's own polling (`waitForFunction` with a
   * string evaluates it) run under a page whose Content-Security-Policy
   * forbids `eval`, as the chat's does.
   */
  newContext(
    options?: { bypassCSP?: boolean },
  ): Promise<{ newPage(): Promise<Page> }>;
  close(): Promise<void>;
}
/** playwright-core's `chromium`, in part. */
export interface Chromium {
  launch(options: {
    executablePath: string;
    args: string[];
    headless: boolean;
  }): Promise<Browser>;
}
