/**
 * `resec list` on the command line: its options, `--watch`'s optional value, and the exit codes the
 * help documents.
 */
import assert from "node:assert/strict";
import {
  EXIT_USAGE,
  type Invocation,
  parseInvocation,
  runCli,
  USAGE,
  UsageError,
} from "../../lib/cli.ts";
import { LIST_EXIT_CODES } from "../../lib/list/model.ts";

Deno.test("list reads once as a table by default; --json and --watch change that", () => {
  assert.deepEqual(parseInvocation(["list"]), { command: "list", envFile: undefined, json: false });
  assert.deepEqual(parseInvocation(["list", "--json"]), {
    command: "list",
    envFile: undefined,
    json: true,
  });
  const watchOf = (args: string[]) => {
    const invocation = parseInvocation(args);
    assert.equal(invocation.command, "list");
    return (invocation as Extract<Invocation, { command: "list" }>).watchMs;
  };
  assert.equal(watchOf(["list", "--watch"]), 2_000, "a bare --watch refreshes every 2s");
  assert.equal(watchOf(["list", "--watch", "--json"]), 2_000);
  assert.equal(watchOf(["list", "--watch=5s"]), 5_000);
  assert.equal(watchOf(["list", "--watch", "1m"]), 60_000);
  assert.equal(watchOf(["list", "--watch", "5"]), 5_000, "a bare number is seconds");
  assert.equal(watchOf(["--watch", "list"]), 2_000, "a command after --watch is not its value");
});

Deno.test("list refuses a watch interval it cannot read or under a second, and options of others", () => {
  for (
    const [args, message] of [
      [["list", "--watch=soon"], /Cannot parse --watch "soon": expected a duration such as "5s"/],
      [["list", "--watch=500ms"], /--watch "500ms" is shorter than 1s/],
      [["list", "--reason", "x"], /--reason does not go with "list"/],
      [["pause", "--json"], /--json does not go with "pause"/],
      [["run", "--watch"], /--watch does not go with "run"/],
    ] as const
  ) {
    assert.throws(() => parseInvocation([...args]), (error: Error) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("--help documents list and every exit code it may return", () => {
  assert.match(USAGE, /resec list \[--json\] \[--watch\[=2s\]\]/);
  for (const [verdict, code] of Object.entries(LIST_EXIT_CODES)) {
    assert.match(USAGE, new RegExp(`\\b${code} [a-z]`), `exit code ${code} (${verdict})`);
  }
  assert.equal(
    new Set(Object.values(LIST_EXIT_CODES)).size,
    Object.keys(LIST_EXIT_CODES).length,
    "distinct codes",
  );
  assert.ok(!Object.values(LIST_EXIT_CODES).includes(EXIT_USAGE), "2 stays the usage error");
});

Deno.test("runCli hands list to the command runner with the agent's configuration", async () => {
  const seen: Invocation[] = [];
  const code = await runCli(["list", "--json", "--consul-lock-key", "other/.lock"], {
    getEnv: () => undefined,
    readTextFile: () => "",
    stdout: () => {},
    stderr: () => {},
    runAgent: () => Promise.resolve(0),
    runCommand: (invocation, config) => {
      seen.push(invocation);
      assert.equal(config.lock.key, "other/.lock");
      return Promise.resolve(LIST_EXIT_CODES["no-master"]);
    },
  });
  assert.equal(code, 3);
  assert.equal(seen[0]?.command, "list");
});
