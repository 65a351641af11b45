/**
 * End to end: secrets handed to agents as files (REDIS_PASSWORD_FILE, as a systemd credential does)
 * reach password-protected Redis servers, and the role-change hook sees none of the agent's secrets.
 */
import assert from "node:assert/strict";
import { makeServerDir, waitFor, withCluster } from "../support/mod.ts";

const PASSWORD = "file-borne-password-1729";
const BASIC_AUTH_PASSWORD = "basic-secret-9876";

Deno.test("agents authenticate to password-protected Redis servers with REDIS_PASSWORD_FILE, and their hooks see no secret", async () => {
  const dir = makeServerDir("secrets");
  // As systemd's LoadCredential= leaves it: the file, with the line break `printf '%s\n'` added.
  const passwordFile = `${dir}/redis-password`;
  Deno.writeTextFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  const recorder = (index: number) => {
    const path = `${dir}/record-${index}.sh`;
    Deno.writeTextFileSync(path, `#!/bin/sh\nenv > ${dir}/env-${index}\n`, { mode: 0o755 });
    return path;
  };
  try {
    await withCluster({
      nodes: 2,
      consulAcl: true,
      redis: () => ({ password: PASSWORD }),
      env: { CONSUL_HTTP_AUTH: `ops:${BASIC_AUTH_PASSWORD}` },
      // Node 0 reads its password from the file; node 1 has it in its environment, which its hook
      // must not inherit.
      nodeEnv: (index) => ({
        ...(index === 0 ? { REDIS_PASSWORD_FILE: passwordFile } : { REDIS_PASSWORD: PASSWORD }),
        ON_ROLE_CHANGE: recorder(index),
      }),
    }, async (cluster) => {
      await cluster.waitForConvergence();
      assert.equal((await cluster.passingSlaves()).length, 1);
      for (const node of cluster.nodes) {
        assert.ok(!node.agent.log().includes(PASSWORD), "the password is never logged");
      }
      const seen = await waitFor(() => {
        try {
          return cluster.nodes.map((node) => Deno.readTextFileSync(`${dir}/env-${node.index}`));
        } catch {
          return undefined;
        }
      }, { message: "both hooks to run" });
      const token = cluster.consul.managementToken!;
      for (const [index, env] of seen.entries()) {
        assert.match(env, /^RESEC_ROLE=(master|slave)$/m, env);
        for (const secret of [PASSWORD, token, BASIC_AUTH_PASSWORD]) {
          assert.ok(!env.includes(secret), `node ${index}'s hook saw a secret:\n${env}`);
        }
        assert.doesNotMatch(env, /^(REDIS_|CONSUL_)/m, env);
      }
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
