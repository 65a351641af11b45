/**
 * `resec list` with the read-only token docs/list.md documents (read from that file, so the docs
 * cannot drift): every record and every instance is visible, and nothing can be written with it.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../lib/config.ts";
import { ConsulClient } from "../../lib/consul/client.ts";
import { ConsulPermissionDeniedError } from "../../lib/consul/errors.ts";
import { putKey } from "../../lib/consul/kv.ts";
import { registerService, updateCheck } from "../../lib/consul/service.ts";
import { listGroup } from "../../lib/list/model.ts";
import { listSettings, readGroupRecords } from "../../lib/list/read.ts";
import { ConsulServer } from "../support/mod.ts";
import { masterService, presenceService } from "../support/services.ts";

/** The HCL policy of docs/list.md: its first ```hcl block. */
function documentedPolicy(): string {
  const text = Deno.readTextFileSync(new URL("../../docs/list.md", import.meta.url));
  const match = /```hcl\n([\s\S]*?)```/.exec(text);
  if (!match) throw new Error("docs/list.md has no ```hcl block");
  return match[1]!;
}

Deno.test("a token of the documented read-only policy lists the group and may write nothing", async () => {
  await using consul = await ConsulServer.start({ acl: true });
  using admin = new ConsulClient({
    connection: { baseUrl: consul.url, token: consul.managementToken },
  });
  const master = masterService();
  await registerService(admin, master);
  await updateCheck(admin, master.check.id, "passing", "role=master offset=0");
  await registerService(admin, presenceService(30_000));
  await putKey(admin, "resec/.lock.paused", '{"reason":"acl test","since":"2026-11-22T00:00:00Z"}');

  const token = await consul.createToken("resec-list", documentedPolicy());
  const parsed = parseConfig({
    REDIS_ADDR: "127.0.0.1:6379",
    CONSUL_HTTP_ADDR: consul.address,
    CONSUL_HTTP_TOKEN: token,
  });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  const config = parsed.config;
  using client = new ConsulClient({ connection: config.consul });

  const listing = listGroup(await readGroupRecords(client, config), listSettings(config));
  assert.deepEqual(listing.passingMasters, ["127.0.0.1:6379"]);
  assert.equal(listing.members[0]?.agent, "alive", "the agent service is visible too");
  assert.equal(listing.pause.paused, true, "the records beside the lock are readable");

  await assert.rejects(
    putKey(client, "resec/.lock.paused", "{}"),
    ConsulPermissionDeniedError,
    "the token is read-only",
  );
});
