/**
 * TLS and mTLS through Deno.createHttpClient against a real Consul agent serving https and requiring
 * client certificates, configured through the Consul CLI's own variables. Certificates come from
 * `consul tls` (X.509 v3), made fresh for each run.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../lib/consul/client.ts";
import { parseConsulEnv } from "../../lib/consul/connection.ts";
import { ConsulUnreachableError } from "../../lib/consul/errors.ts";
import { putKey, readKey } from "../../lib/consul/kv.ts";
import { EnvReader } from "../../lib/env.ts";
import {
  consulBinary,
  freePort,
  makeServerDir,
  type ServerLaunch,
  TestServer,
} from "../support/mod.ts";

/** A dev agent serving https only, with `verify_incoming` on (clients must present a certificate). */
class TlsConsul extends TestServer {
  readonly httpsPort = freePort();
  readonly dir = makeServerDir("consul-tls");

  get caFile() {
    return `${this.dir}/consul-agent-ca.pem`;
  }
  get clientCert() {
    return `${this.dir}/dc1-client-consul-0.pem`;
  }
  get clientKey() {
    return `${this.dir}/dc1-client-consul-0-key.pem`;
  }

  async start(): Promise<this> {
    for (
      const args of [["tls", "ca", "create"], ["tls", "cert", "create", "-server", "-dc", "dc1"], [
        "tls",
        "cert",
        "create",
        "-client",
        "-dc",
        "dc1",
      ]]
    ) {
      const output = await new Deno.Command(consulBinary(), {
        args,
        cwd: this.dir,
        stdout: "null",
        stderr: "piped",
      })
        .output();
      if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
    }
    const config = {
      node_name: `resec-tls-${this.httpsPort}`,
      bind_addr: "127.0.0.1",
      client_addr: "127.0.0.1",
      advertise_addr: "127.0.0.1",
      log_level: "warn",
      disable_update_check: true,
      ports: {
        http: -1,
        https: this.httpsPort,
        dns: -1,
        grpc: -1,
        grpc_tls: -1,
        serf_lan: freePort(),
        serf_wan: freePort(),
        server: freePort(),
      },
      tls: {
        defaults: {
          ca_file: this.caFile,
          cert_file: `${this.dir}/dc1-server-consul-0.pem`,
          key_file: `${this.dir}/dc1-server-consul-0-key.pem`,
        },
        https: { verify_incoming: true },
      },
    };
    Deno.writeTextFileSync(`${this.dir}/agent.json`, JSON.stringify(config));
    await this.launch();
    return this;
  }

  protected launchPlan(): ServerLaunch {
    return {
      name: "consul",
      command: consulBinary(),
      args: ["agent", "-dev", `-config-file=${this.dir}/agent.json`],
      logPath: `${this.dir}/consul.log`,
      isReady: () => this.#hasLeader(),
      timeoutMs: 30_000,
      readyMessage: "the TLS Consul to elect itself leader",
    };
  }

  async #hasLeader(): Promise<boolean> {
    using client = this.client({ mtls: true });
    const leader = await client.request<string>({
      method: "GET",
      path: "/v1/status/leader",
      endpoint: "status",
      timeoutMs: 1_000,
    });
    return (leader.value ?? "").length > 0;
  }

  /** A client configured the way an operator would: through the Consul CLI's variables. */
  client(options: { mtls: boolean; ca?: boolean }): ConsulClient {
    const env: Record<string, string> = {
      CONSUL_HTTP_ADDR: `127.0.0.1:${this.httpsPort}`,
      CONSUL_HTTP_SSL: "true",
    };
    if (options.ca !== false) env.CONSUL_CACERT = this.caFile;
    if (options.mtls) {
      env.CONSUL_CLIENT_CERT = this.clientCert;
      env.CONSUL_CLIENT_KEY = this.clientKey;
    }
    const reader = new EnvReader(env);
    const connection = parseConsulEnv(reader, Deno.readTextFileSync);
    reader.assertValid();
    return new ConsulClient({ connection, requestTimeoutMs: 2_000 });
  }
}

Deno.test("over https with the CA and a v3 client certificate from CONSUL_* variables, mTLS works", async () => {
  await using consul = await new TlsConsul().start();
  using client = consul.client({ mtls: true });
  assert.ok(client.connection.baseUrl.startsWith("https://"));
  await putKey(client, "resec/.lock", "over tls");
  assert.equal((await readKey(client, "resec/.lock")).entry?.value, "over tls");
});

Deno.test("a Consul that requires client certificates refuses a client without one, as unreachable", async () => {
  await using consul = await new TlsConsul().start();
  using client = consul.client({ mtls: false });
  const error = await readKey(client, "resec/.lock").catch((error) => error);
  // With TLS 1.3 the refusal comes after the handshake: "CertificateRequired" or "connection closed".
  assert.ok(error instanceof ConsulUnreachableError, String(error));
  assert.match(error.message, /^Cannot reach Consul at https:\/\/127\.0\.0\.1:\d+: /);
});

Deno.test("without Consul's CA its certificate is not trusted", async () => {
  await using consul = await new TlsConsul().start();
  using client = consul.client({ mtls: true, ca: false });
  const error = await readKey(client, "resec/.lock").catch((error) => error);
  assert.ok(error instanceof ConsulUnreachableError, String(error));
  assert.match(error.message, /UnknownIssuer|certificate/i);
});
