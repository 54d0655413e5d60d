/**
 * The chat example in a real browser: two headless Chromium pages
 * (Debian's /usr/bin/chromium, driven by playwright-core) chat through one
 * `examples/chat_server.ts`, and one page, reloaded, gets the history.
 *
 * playwright-core is a test-only peer (tests/browser/package.json, never
 * imported by src/), installed here with `npm ci` when missing. The test
 * skips, saying why, when Chromium or the package is not there.
 *
 *     deno test -A tests/browser/
 *     bun test ./tests/browser/
 */
import assert from "node:assert/strict";
import { startChat } from "../interop/_chat.ts";
import { interopTest, RUNTIME } from "../interop/_harness.ts";
import { launch, type Page, playwright } from "./_playwright.ts";

const found = playwright();
const name = `${RUNTIME}: examples/chat_server.ts in Chromium`;

/** Waits until the page shows `n` messages; returns their texts. */
async function messages(page: Page, n: number): Promise<string[]> {
  await page.waitForFunction(
    `document.querySelectorAll('[data-testid="message"]').length >= ${n}`,
    undefined,
    { timeout: 10_000 },
  );
  return page.getByTestId("message").allTextContents();
}

async function join(page: Page, url: string, who: string, room: string) {
  await page.goto(url);
  await page.getByTestId("name").fill(who);
  await page.getByTestId("room").fill(room);
  await page.getByTestId("join").click();
  await page.waitForFunction(
    `!document.querySelector('[data-testid="input"]').disabled`,
    undefined,
    { timeout: 10_000 },
  );
}

if (typeof found === "string") {
  console.log(`${name}: ${found}`);
} else {
  interopTest(
    `${name}: two pages chat; a reloaded page gets the history`,
    async (defer) => {
      const { http } = await startChat(defer);
      const browser = await launch(found.chromium);
      defer(() => browser.close());
      // The page's CSP has no 'unsafe-eval'; waitForFunction's polling of a
      // string predicate evals it, so without this a wait that does not
      // succeed at once fails with an EvalError.
      const context = { bypassCSP: true };
      const alice = await (await browser.newContext(context)).newPage();
      const bob = await (await browser.newContext(context)).newPage();
      await join(alice, `${http}/`, "alice", "garden");
      await join(bob, `${http}/`, "bob", "garden");

      // Enter sends; so does the button.
      await alice.getByTestId("input").fill("hello from alice");
      await alice.getByTestId("input").press("Enter");
      await messages(bob, 1);
      await bob.getByTestId("input").fill("hi alice <b>not bold</b>");
      await bob.getByTestId("send").click();
      const expected = [
        /alice.*hello from alice/,
        /bob.*hi alice <b>not bold<\/b>/,
      ];
      for (const page of [alice, bob]) {
        const texts = await messages(page, 2);
        assert.equal(texts.length, 2);
        expected.forEach((re, i) => assert.match(texts[i]!, re));
      }
      // Who is present: both, on both pages.
      await alice.waitForFunction(
        `document.querySelector('[data-testid="present"]').textContent.includes("bob")`,
      );

      // Bob reloads: the page remembers name and room, and joining again
      // shows the room's history.
      await bob.reload();
      assert.equal(await bob.getByTestId("message").count(), 0);
      await bob.getByTestId("join").click();
      const history = await messages(bob, 2);
      assert.equal(history.length, 2);
      expected.forEach((re, i) => assert.match(history[i]!, re));
      // And chatting goes on, the sender included.
      await bob.getByTestId("input").fill("back again");
      await bob.getByTestId("input").press("Enter");
      for (const page of [alice, bob]) {
        assert.match((await messages(page, 3))[2]!, /bob.*back again/);
      }
    },
    60_000,
  );
}
