/**
 * `node:test` for Deno with Deno's leak sanitizers ON.
 *
 * Deno 2.9's own `node:test` registers every test with the op, resource and
 * exit sanitizers off, whatever the command line asks (`--sanitize-ops` and
 * `--sanitize-resources` do not reach it). `deno task test` therefore maps
 * `node:test` to this module (`tests/_deno_import_map.json`), which runs the
 * same suites as `Deno.test`s with the sanitizers on: a test that leaves a
 * socket open, a timer pending or a read unfinished fails on Deno. Bun keeps
 * its own `node:test`; the suites run unchanged on both.
 *
 * The mapping is what `node:test` means to these suites:
 *
 * - every `test`/`it` is a `Deno.test` of its own, named after the
 *   `describe`s around it (`outer > inner > test`), so a leak is pinned on
 *   the test that made it, checked after its `afterEach` hooks have run.
 *   (Deno 2.9 checks nothing at the end of a `t.step`, only at the end of a
 *   whole `Deno.test`: steps would let a leak in one test pass unnoticed
 *   when a later one happens to clean it up.)
 * - `describe` only groups: its body runs at once and registers its tests.
 * - `before` runs before the first test of its `describe`, `after` after
 *   the last (even a failed one; at the end of the file when `--filter` left
 *   the last one out); `beforeEach`/`afterEach` around each test in it or in
 *   a nested `describe`, outer `beforeEach` first, inner `afterEach` first.
 *   Hooks outside any `describe` are the file's: around each of its tests,
 *   and before its first and after its last. A resource a `before` hook
 *   opens for several tests would count as the first test's leak: open it
 *   per test.
 * - options: `skip` and `todo` (the test is ignored), `timeout` (the test
 *   fails after that many ms). `only` is refused: `deno test --filter` does
 *   that.
 *
 * Deno's JUnit report lists exactly one case per test, and
 * `tests/_run_all.ts` counts them as before.
 *
 * @module
 */

/** A test body or hook, as `node:test` takes it (no test context is used). */
type Body = () => unknown;

/** The options of `test`/`it`/`describe` this shim honours. */
export interface TestOptions {
  /** Skip it (a string says why). */
  skip?: boolean | string | undefined;
  /** Mark it unfinished: not run here. */
  todo?: boolean | string | undefined;
  /** Fail the test after this many ms. */
  timeout?: number | undefined;
  /** Not supported: use `deno test --filter`. */
  only?: boolean | undefined;
}

interface Suite {
  name: string;
  parent: Suite | null;
  ignore: boolean;
  before: Body[];
  after: Body[];
  beforeEach: Body[];
  afterEach: Body[];
  /** The last test registered in it or in a `describe` nested in it. */
  last: object | null;
  /** Whether its `before` hooks ran, and whether its `after` hooks did. */
  started: boolean;
  finished: boolean;
}

const SANITIZERS = {
  sanitizeOps: true,
  sanitizeResources: true,
  sanitizeExit: true,
} as const;

/** The file itself: hooks outside any `describe` are its. */
const root: Suite = {
  name: "",
  parent: null,
  ignore: false,
  before: [],
  after: [],
  beforeEach: [],
  afterEach: [],
  last: null,
  started: false,
  finished: false,
};
/** The `describe` whose body is running, while a file registers its tests. */
let current: Suite = root;
/** Suites whose `before` hooks ran; their `after` hooks are still owed. */
const open = new Set<Suite>();
let afterAllRegistered = false;

function parse(
  name: string,
  optionsOrBody: TestOptions | Body | undefined,
  maybeBody: Body | undefined,
): { options: TestOptions; body: Body } {
  if (typeof name !== "string") {
    throw new TypeError("node:test on Deno: give every test a name");
  }
  const options = typeof optionsOrBody === "object" ? optionsOrBody : {};
  const body = typeof optionsOrBody === "function" ? optionsOrBody : maybeBody;
  if (typeof body !== "function") {
    throw new TypeError(`node:test on Deno: "${name}" has no function`);
  }
  if (options.only) {
    throw new TypeError(
      `node:test on Deno: "only" is not supported ("${name}"); use deno test --filter`,
    );
  }
  if (
    options.timeout !== undefined &&
    !(options.timeout > 0 && Number.isFinite(options.timeout))
  ) {
    throw new RangeError(
      `node:test on Deno: timeout must be a positive number, got ${options.timeout}`,
    );
  }
  return { options, body };
}

const ignored = (options: TestOptions) =>
  (options.skip !== undefined && options.skip !== false) ||
  (options.todo !== undefined && options.todo !== false);

/** Runs `run`, then `always` even when `run` threw; throws the first error. */
async function guarded(
  run: () => Promise<void>,
  always: () => Promise<void>,
): Promise<void> {
  let failure: { error: unknown } | null = null;
  try {
    await run();
  } catch (error) {
    failure = { error };
  }
  try {
    await always();
  } catch (error) {
    failure ??= { error };
  }
  if (failure !== null) throw failure.error;
}

/** Fails after `ms` instead of waiting on; the timer never outlives the race. */
async function timed(body: Body, ms: number | undefined): Promise<void> {
  if (ms === undefined) {
    await body();
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(body),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`test timed out after ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The suites from the file's to `suite`. */
function lineage(suite: Suite): Suite[] {
  const chain: Suite[] = [];
  for (let s: Suite | null = suite; s !== null; s = s.parent) chain.unshift(s);
  return chain;
}

async function runAfter(suite: Suite): Promise<void> {
  if (suite.finished) return;
  suite.finished = true;
  open.delete(suite);
  for (const hook of suite.after) await hook();
}

/**
 * One test with its hooks: the `before` hooks of suites starting with it,
 * the `beforeEach` hooks outer first, the body, the `afterEach` hooks inner
 * first, and the `after` hooks of suites it is the last test of.
 */
async function runCase(
  id: object,
  body: Body,
  timeout: number | undefined,
  suite: Suite,
): Promise<void> {
  const chain = lineage(suite);
  await guarded(async () => {
    for (const s of chain) {
      if (s.started) continue;
      s.started = true;
      open.add(s);
      for (const hook of s.before) await hook();
    }
    for (const s of chain) for (const hook of s.beforeEach) await hook();
    await timed(body, timeout);
  }, async () => {
    const inner = [...chain].reverse();
    await guarded(async () => {
      for (const s of inner) for (const hook of s.afterEach) await hook();
    }, async () => {
      for (const s of inner) if (s.last === id) await runAfter(s);
    });
  });
}

/**
 * Registers a test as a `Deno.test` of its own, named after the `describe`s
 * around it (`outer > inner > test`), with the sanitizers on.
 *
 * @param name The test's name.
 * @param optionsOrBody Options, or the body.
 * @param body The body, when options come first.
 */
export function test(
  name: string,
  optionsOrBody?: TestOptions | Body,
  body?: Body,
): void {
  const { options, body: fn } = parse(name, optionsOrBody, body);
  const suite = current;
  const chain = lineage(suite);
  const ignore = ignored(options) || chain.some((s) => s.ignore);
  const id = {};
  if (!ignore) { for (const s of chain) s.last = id; }
  Deno.test({
    name: [...chain.slice(1).map((s) => s.name), name].join(" > "),
    ignore,
    fn: () => runCase(id, fn, options.timeout, suite),
    ...SANITIZERS,
  });
}

/** `it` is `test`. */
export const it: typeof test = test;

/**
 * Registers a group: its body runs at once and registers the tests in it,
 * which must happen synchronously (Deno registers tests while a module loads).
 *
 * @param name The group's name.
 * @param optionsOrBody Options, or the body.
 * @param body The body, when options come first.
 */
export function describe(
  name: string,
  optionsOrBody?: TestOptions | Body,
  body?: Body,
): void {
  const { options, body: fn } = parse(name, optionsOrBody, body);
  const suite: Suite = {
    name,
    parent: current,
    ignore: ignored(options),
    before: [],
    after: [],
    beforeEach: [],
    afterEach: [],
    last: null,
    started: false,
    finished: false,
  };
  const parent = current;
  current = suite;
  let returned: unknown;
  try {
    returned = fn();
  } finally {
    current = parent;
  }
  if (returned instanceof Promise) {
    throw new TypeError(
      `node:test on Deno: describe("${name}") must register its tests synchronously, not in an async function`,
    );
  }
}

/** `suite` is `describe`. */
export const suite: typeof describe = describe;

function hook(kind: "before" | "after" | "beforeEach" | "afterEach") {
  return (fn: Body): void => {
    if (typeof fn !== "function") {
      throw new TypeError(`node:test on Deno: ${kind} needs a function`);
    }
    current[kind].push(fn);
    if (kind === "after" && !afterAllRegistered) {
      // A test filtered out (--filter) may be a suite's last: its `after`
      // hooks then run when the file's tests are done.
      afterAllRegistered = true;
      Deno.test.afterAll(async () => {
        for (const suite of [...open].reverse()) await runAfter(suite);
      });
    }
  };
}

/** Runs once before the enclosing `describe`'s tests. */
export const before: (fn: Body) => void = hook("before");
/** Runs once after the enclosing `describe`'s tests, even failed ones. */
export const after: (fn: Body) => void = hook("after");
/** Runs before each test of the enclosing `describe`, nested ones included. */
export const beforeEach: (fn: Body) => void = hook("beforeEach");
/** Runs after each test of the enclosing `describe`, even a failed one. */
export const afterEach: (fn: Body) => void = hook("afterEach");

export default test;
