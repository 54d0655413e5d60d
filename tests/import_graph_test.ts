/**
 * The modules under `src/` import one another one way: no cycle, type-only
 * imports included. A cycle makes a module's meaning depend on the order its
 * importers load in, and hides which layer sits on which (the channel layer
 * once was one: the transport, the byte channel and the socket channel all
 * imported each other).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

/** Every `.ts` file under `dir`, as absolute paths. */
function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files.sort();
}

// Statements at the start of a line: JSDoc examples (` * import …`) are not
// imports. Between `import`/`export` and `from` only names, braces, commas
// and `*` may come, so a declaration never reaches a later `from`.
const FROM = /^(?:import|export)\b[\w\s{},*$]*?\bfrom\s*(["'])(.*?)\1/gm;
const BARE = /^import\s*(["'])(.*?)\1/gm;

/** The relative specifiers `source` imports or re-exports from. */
function relativeImports(source: string): string[] {
  const specifiers: string[] = [];
  for (const re of [FROM, BARE]) {
    for (const match of source.matchAll(re)) {
      const specifier = match[2]!;
      if (specifier.startsWith("./") || specifier.startsWith("../")) {
        specifiers.push(specifier);
      }
    }
  }
  return specifiers;
}

/** The graph of relative imports between the files under `dir`, by path. */
function importGraph(dir: string): Map<string, string[]> {
  const files = sourceFiles(dir);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = relativeImports(readFileSync(file, "utf8"))
      .map((specifier) => resolve(dirname(file), specifier))
      .filter((target) => files.includes(target))
      .map((target) => relative(dir, target));
    graph.set(relative(dir, file), [...new Set(targets)]);
  }
  return graph;
}

/**
 * One cycle through each back edge a depth-first walk meets, as the path
 * `a.ts -> b.ts -> a.ts`; none when the graph has no cycle.
 */
function findCycles(graph: Map<string, string[]>): string[] {
  const cycles: string[] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (node: string) => {
    const at = path.indexOf(node);
    if (at >= 0) {
      cycles.push([...path.slice(at), node].join(" -> "));
      return;
    }
    if (done.has(node)) return;
    path.push(node);
    for (const next of graph.get(node) ?? []) visit(next);
    path.pop();
    done.add(node);
  };
  for (const node of graph.keys()) visit(node);
  return cycles;
}

describe("the import graph of src/", () => {
  test("relativeImports finds multi-line, type-only and re-exports, not doc examples", () => {
    const source = [
      "/**",
      ' * import { example } from "./in_a_comment.ts";',
      " */",
      "import {",
      "  type A,",
      "  b,",
      '} from "./a.ts";',
      'import type * as t from "../t.ts";',
      'export type { C } from "./c.ts";',
      'export * from "./d.ts";',
      'import "./e.ts";',
      'import assert from "node:assert/strict";',
      "export function f() {",
      '  return "from \\"./g.ts\\"";',
      "}",
    ].join("\n");
    assert.deepEqual(relativeImports(source).sort(), [
      "../t.ts",
      "./a.ts",
      "./c.ts",
      "./d.ts",
      "./e.ts",
    ]);
  });

  test("findCycles names a cycle, and none in a graph without one", () => {
    const graph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts", "d.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", []],
    ]);
    assert.deepEqual(findCycles(graph), ["a.ts -> b.ts -> c.ts -> a.ts"]);
    graph.set("c.ts", ["d.ts"]);
    assert.deepEqual(findCycles(graph), []);
  });

  test("has no cycle", () => {
    const graph = importGraph(SRC);
    // Not vacuous: the files were read and their imports found.
    assert.ok(graph.get("connection.ts")?.includes("protocol.ts"));
    assert.ok(graph.get("transports/deno.ts")?.includes("transport.ts"));
    const cycles = findCycles(graph);
    assert.deepEqual(
      cycles,
      [],
      `src/ has import cycles:\n  ${cycles.join("\n  ")}`,
    );
  });
});
