/**
 * The linked list behind the server's open connections and handshakes and
 * the deadline queues (src/_linked_list.ts).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Link, LinkedList } from "../src/_linked_list.ts";

class Named extends Link {
  constructor(readonly name: string) {
    super();
  }
}

const names = (list: LinkedList<Named>) => [...list].map((link) => link.name);

describe("LinkedList", () => {
  test("LinkedList keeps its links in the order they were appended", () => {
    const list = new LinkedList<Named>();
    assert.equal(list.first, null);
    const [a, b, c] = ["a", "b", "c"].map((name) =>
      list.append(new Named(name))
    );
    assert.deepEqual(names(list), ["a", "b", "c"]);
    assert.equal(list.size, 3);
    assert.equal(list.first, a);
    assert.equal(a!.list, list);
    assert.equal(b!.prev, a);
    assert.equal(b!.next, c);
  });

  test("LinkedList: a link leaves from the start, the middle or the end, once", () => {
    for (const leaving of ["a", "b", "c"]) {
      const list = new LinkedList<Named>();
      const links = ["a", "b", "c"].map((name) => list.append(new Named(name)));
      const link = links.find((link) => link.name === leaving)!;
      assert.equal(link.unlink(), true);
      assert.equal(link.unlink(), false, "not in a list any more");
      assert.equal(list.delete(link), false);
      assert.deepEqual(
        names(list),
        ["a", "b", "c"].filter((name) => name !== leaving),
      );
      assert.equal(list.size, 2);
      // What it pointed at is let go (see the module's doc for why).
      assert.equal(link.prev, null);
      assert.equal(link.next, null);
      assert.equal(link.list, null);
      // The others still walk both ways.
      const [first, second] = [...list];
      assert.equal(list.first, first);
      assert.equal(first!.prev, null);
      assert.equal(first!.next, second);
      assert.equal(second!.prev, first);
      assert.equal(second!.next, null);
    }
  });

  test("LinkedList refuses a link that is in a list, and one of another list", () => {
    const one = new LinkedList<Named>();
    const other = new LinkedList<Named>();
    const a = one.append(new Named("a"));
    assert.throws(() => other.append(a), /in a list already/);
    assert.throws(() => one.append(a), /in a list already/);
    assert.equal(other.delete(a), false);
    assert.deepEqual(names(one), ["a"]);
    a.unlink();
    other.append(a);
    assert.deepEqual(names(other), ["a"]);
    assert.equal(one.size, 0);
  });

  test("LinkedList calls onEmptied each time its last link leaves, not on clear()", () => {
    let emptied = 0;
    const list = new LinkedList<Named>(() => emptied++);
    const a = list.append(new Named("a"));
    const b = list.append(new Named("b"));
    a.unlink();
    assert.equal(emptied, 0);
    b.unlink();
    assert.equal(emptied, 1);
    list.append(new Named("c")).unlink();
    assert.equal(emptied, 2);
    const d = list.append(new Named("d"));
    list.clear();
    assert.equal(emptied, 2);
    assert.equal(list.size, 0);
    assert.equal(list.first, null);
    assert.equal(d.list, null);
    assert.equal(d.unlink(), false);
    list.append(d);
    assert.deepEqual(names(list), ["d"]);
  });

  test("LinkedList: iterating a copy lets every link leave on the way", () => {
    const list = new LinkedList<Named>();
    for (const name of ["a", "b", "c"]) list.append(new Named(name));
    const seen: string[] = [];
    for (const link of [...list]) {
      seen.push(link.name);
      link.unlink();
    }
    assert.deepEqual(seen, ["a", "b", "c"]);
    assert.equal(list.size, 0);
  });
  test("LinkedList: iterating with a Set's semantics while links leave and join", () => {
    // The same changes made to a Set and to the list, during iteration,
    // visit the same entries.
    const scenarios: [
      string,
      (at: string, list: Map<string, () => void>) => void,
    ][] = [
      [
        "each link leaves as it is visited",
        (at, ops) => ops.get(`del ${at}`)!(),
      ],
      ["the next link leaves", (at, ops) => at === "b" && ops.get("del c")!()],
      ["the one before leaves", (at, ops) => at === "c" && ops.get("del b")!()],
      ["all leave at the first", (at, ops) => {
        if (at !== "a") return;
        for (const name of ["a", "b", "c", "d", "e"]) ops.get(`del ${name}`)!();
      }],
      ["one joins at the end", (at, ops) => at === "e" && ops.get("add f")!()],
      ["the current leaves, one joins", (at, ops) => {
        if (at !== "c") return;
        ops.get("del c")!();
        ops.get("add f")!();
      }],
    ];
    for (const [name, change] of scenarios) {
      const set = new Set<string>();
      const list = new LinkedList<Named>();
      const links = new Map<string, Named>();
      for (const n of ["a", "b", "c", "d", "e", "f"]) {
        links.set(n, new Named(n));
      }
      for (const n of ["a", "b", "c", "d", "e"]) {
        set.add(n);
        list.append(links.get(n)!);
      }
      const visit = (
        iterate: () => Iterable<string>,
        ops: Map<string, () => void>,
      ) => {
        const seen: string[] = [];
        for (const at of iterate()) {
          seen.push(at);
          change(at, ops);
        }
        return seen;
      };
      const setOps = new Map<string, () => void>();
      const listOps = new Map<string, () => void>();
      for (const n of links.keys()) {
        setOps.set(`del ${n}`, () => set.delete(n));
        setOps.set(`add ${n}`, () => set.add(n));
        listOps.set(`del ${n}`, () => links.get(n)!.unlink());
        listOps.set(`add ${n}`, () => list.append(links.get(n)!));
      }
      const expected = visit(() => set, setOps);
      const got = visit(() => names2(list), listOps);
      assert.deepEqual(got, expected, name);
      assert.deepEqual(names(list), [...set], name);
    }
  });

  test("LinkedList: clear() ends an iteration under way, and a finished one is let go", () => {
    const list = new LinkedList<Named>();
    for (const name of ["a", "b", "c"]) list.append(new Named(name));
    const seen: string[] = [];
    for (const link of list) {
      seen.push(link.name);
      list.clear();
    }
    assert.deepEqual(seen, ["a"]);
    // A loop left with break lets its cursor go: later removals cost nothing
    // for it, and a new iteration starts from the start.
    for (const name of ["x", "y"]) list.append(new Named(name));
    for (const _ of list) break;
    assert.deepEqual(names(list), ["x", "y"]);
  });
});

/** The names, visited lazily (not a copy): changes during the loop count. */
function* names2(list: LinkedList<Named>): Generator<string> {
  for (const link of list) yield link.name;
}
