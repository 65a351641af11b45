/**
 * The environment an ON_ROLE_CHANGE hook runs with (the real child process is tested in
 * tests/integration/hook_environment_test.ts).
 */
import assert from "node:assert/strict";
import { HOOK_INHERITED_VARIABLES, hookEnvironment } from "../../lib/hooks.ts";

const CHANGE = { role: "slave", previous: "master", master: "10.0.0.2:6379" } as const;

Deno.test("a hook's environment is the inherited variables the agent has plus the change, nothing else", () => {
  const agent: Record<string, string> = {
    PATH: "/usr/bin",
    LC_ALL: "C",
    TZ: "",
    REDIS_PASSWORD: "secret",
    CONSUL_HTTP_TOKEN: "token",
  };
  assert.deepEqual(hookEnvironment(CHANGE, (name) => agent[name]), {
    PATH: "/usr/bin",
    LC_ALL: "C",
    RESEC_ROLE: "slave",
    RESEC_PREVIOUS_ROLE: "master",
    RESEC_MASTER_ADDR: "10.0.0.2:6379",
  });
  assert.deepEqual([...HOOK_INHERITED_VARIABLES], ["PATH", "HOME", "LANG", "LC_ALL", "TZ"]);
});

Deno.test("a hook of an agent started without PATH gets a standard search path", () => {
  const env = hookEnvironment(CHANGE, () => undefined);
  assert.equal(env.PATH, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  assert.deepEqual(Object.keys(env).sort(), [
    "PATH",
    "RESEC_MASTER_ADDR",
    "RESEC_PREVIOUS_ROLE",
    "RESEC_ROLE",
  ]);
});
