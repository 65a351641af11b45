/**
 * The fast takeover's reach probe against real sockets: a TCP connection to a listening port is made
 * and closed, one to a closed port fails.
 */
import assert from "node:assert/strict";
import { tcpConnectProbe } from "../../lib/agent/watch/holder_reach.ts";

Deno.test("a TCP attempt succeeds on a listening port and fails on a closed one", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const connection of listener) connection.close();
  })();
  const probe = tcpConnectProbe();
  await probe({ host: "127.0.0.1", port }, 1_000);
  listener.close();
  await accepting.catch(() => {});
  await assert.rejects(() => probe({ host: "127.0.0.1", port }, 1_000));
});
