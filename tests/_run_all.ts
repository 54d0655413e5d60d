/**
 * Runs every test on Deno and on Bun, then prints one summary line for all
 * of them: `N passed, N failed, N skipped`. This is `deno task test`, the
 * command the README gives and `.ci/run` calls.
 *
 * - Deno: `deno test -A --doc` over `tests/`, `src/`, `mod.ts` and
 *   `README.md`, so the JSDoc and README examples run too, with
 *   `tests/_deno_import_map.json` mapping `node:test` to
 *   `tests/_node_test_on_deno.ts`: the suites then run as `Deno.test`s with
 *   the op, resource and exit sanitizers on, which Deno's own `node:test`
 *   leaves off. (The import map has no other entry; the doc tests'
 *   `@wsstream/wsstream` still resolves through `deno.json`'s name and
 *   exports.)
 * - Bun: `bun test ./tests`; `bun` from PATH, else `npx -y bun@1`, so a
 *   machine with only Node, npm and this script's Deno can run it.
 *
 * Counts come from each runner's JUnit report; only leaf test cases count
 * (Deno lists `describe` groups as cases when a suite defines its own steps
 * or runs on Deno's `node:test`; Bun does not).
 *
 * Extra arguments are passed to both runners as file filters, e.g.
 * `deno task test tests/frame_test.ts`.
 */

const outDir = new URL("../.ci/out/", import.meta.url);
await Deno.mkdir(outDir, { recursive: true });
const filters = Deno.args;

// `ws`, the independent peer of the deflate conformance cases, is a test and
// benchmark peer pinned by bench/package-lock.json: installed here when
// missing, so that a clean clone runs those cases rather than skipping them.
try {
  await Deno.stat(new URL("../bench/node_modules/ws/", import.meta.url));
} catch {
  console.log("$ npm ci (bench/: ws, a test peer)");
  const { code } = await new Deno.Command("npm", {
    args: ["ci", "--no-audit", "--no-fund"],
    cwd: new URL("../bench/", import.meta.url),
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) console.log("npm ci in bench/ failed: the ws cases skip");
}

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

async function run(
  command: string,
  args: string[],
): Promise<{ code: number }> {
  console.log(`\n$ ${command} ${args.join(" ")}`);
  const child = new Deno.Command(command, {
    args,
    stdout: "inherit",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  const { code } = await child.status;
  return { code };
}

function decodeXml(text: string): string {
  return text.replaceAll("&gt;", ">").replaceAll("&lt;", "<")
    .replaceAll("&quot;", '"').replaceAll("&apos;", "'")
    .replaceAll("&amp;", "&");
}

/** Counts the leaf test cases of a JUnit report. */
function countJunit(xml: string, nested: "names" | "tree"): Counts {
  const cases: { key: string; failed: boolean; skipped: boolean }[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const match of xml.matchAll(re)) {
    const attrs = match[1] ?? "";
    const body = match[3] ?? "";
    const name = decodeXml(/\bname="([^"]*)"/.exec(attrs)?.[1] ?? "");
    const file = decodeXml(/\bclassname="([^"]*)"/.exec(attrs)?.[1] ?? "");
    cases.push({
      key: nested === "names" ? name : `${file}\u0000${name}`,
      failed: /<(failure|error)\b/.test(body),
      skipped: /<skipped\b/.test(body),
    });
  }
  // Deno names steps "group > step" and lists the group itself as a case:
  // a case is a group when another case's name starts with its name + " > ".
  const groups = new Set<string>();
  if (nested === "names") {
    for (const { key } of cases) {
      const parts = key.split(" > ");
      for (let i = 1; i < parts.length; i++) {
        groups.add(parts.slice(0, i).join(" > "));
      }
    }
  }
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const c of cases) {
    if (groups.has(c.key)) continue;
    if (c.failed) counts.failed++;
    else if (c.skipped) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

async function readReport(path: URL): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

function bunCommand(): [string, string[]] {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      Deno.statSync(`${dir}/bun`);
      return [`${dir}/bun`, []];
    } catch {
      // not here
    }
  }
  return ["npx", ["-y", "bun@1"]];
}

/** Whether `filter` names a file or folder that exists outside tests/. */
function isOutsideTests(filter: string): boolean {
  const path = filter.replace(/^\.\//, "");
  if (path === "tests" || path.startsWith("tests/")) return false;
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false; // a name fragment: Bun matches it against test file paths
  }
}

interface RunResult {
  name: string;
  counts: Counts;
  code: number;
}

/** A runner's counts from its JUnit report; no report is one failure. */
function resultOf(
  name: string,
  report: string | null,
  nested: "names" | "tree",
  code: number,
): RunResult {
  const counts = report === null
    ? { passed: 0, failed: 1, skipped: 0 }
    : countJunit(report, nested);
  return { name, counts, code };
}

const results: RunResult[] = [];

// Deno: the suite plus the JSDoc examples.
const denoXml = new URL("deno.xml", outDir);
await Deno.remove(denoXml).catch(() => {});
const deno = await run(Deno.execPath(), [
  "test",
  "-A",
  "--doc",
  `--import-map=${new URL("_deno_import_map.json", import.meta.url).pathname}`,
  "--reporter=dot",
  `--junit-path=${denoXml.pathname}`,
  ...(filters.length > 0 ? filters : ["tests/", "src/", "mod.ts", "README.md"]),
]);
results.push(resultOf("deno", await readReport(denoXml), "names", deno.code));

// Bun: the same suite. It runs tests/ only: the JSDoc and README examples
// (src/, mod.ts, README.md) are Deno's `--doc`, so a filter naming a path
// outside tests/ is Deno's alone, and with no other filter Bun has nothing
// to run.
const bunFilters = filters.filter((filter) => !isOutsideTests(filter));
if (filters.length > 0 && bunFilters.length === 0) {
  console.log(
    `\nbun: nothing to run for ${filters.join(" ")} (Deno's doc tests)`,
  );
} else {
  const bunXml = new URL("bun.xml", outDir);
  await Deno.remove(bunXml).catch(() => {});
  const [bunBin, bunPrefix] = bunCommand();
  const bun = await run(bunBin, [
    ...bunPrefix,
    "test",
    "--only-failures",
    "--reporter=junit",
    `--reporter-outfile=${bunXml.pathname}`,
    ...(bunFilters.length > 0 ? bunFilters.map((f) => `./${f}`) : ["./tests"]),
  ]);
  results.push(resultOf("bun", await readReport(bunXml), "tree", bun.code));
}

const total: Counts = { passed: 0, failed: 0, skipped: 0 };
console.log("");
for (const { name, counts, code } of results) {
  // A runner that failed without a failing case (a crash, an unhandled
  // rejection between tests, a sanitizer) still counts as one failure.
  if (code !== 0 && counts.failed === 0) counts.failed = 1;
  console.log(
    `${name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`,
  );
  total.passed += counts.passed;
  total.failed += counts.failed;
  total.skipped += counts.skipped;
}
console.log(
  `${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`,
);
Deno.exit(total.failed === 0 ? 0 : 1);
