/**
 * Reading the Consul CLI's environment variables into a connection config: addresses, tokens, basic
 * auth and TLS files, with every problem recorded and no secret ever echoed.
 */
import assert from "node:assert/strict";
import { EnvReader } from "../../lib/env.ts";
import {
  type ConsulConnectionConfig,
  parseConsulEnv,
  x509Version,
} from "../../lib/consul/connection.ts";

const TOKEN = "3f1c0e55-1f0e-4c7a-9d2b-6a8e5c4b2d10";

// Throwaway self-signed certificates made with openssl for these tests (no private key is needed).
const CERT_V1 = `-----BEGIN CERTIFICATE-----
MIIBFDCBuwIUdneSgH6Q26OTB58K6T2YK6XRyh8wCgYIKoZIzj0EAwIwDTELMAkG
A1UEAwwCdjEwHhcNMjYxMTIxMjM1MjEwWhcNMzYxMTE4MjM1MjEwWjANMQswCQYD
VQQDDAJ2MTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIoo51YWDewIf4XMYXuM
549i3D7a+x3G5flUZsNlkuD3DIyc8tL3hTs/rkpM/DmB+/oxUNno7Yxii+KMHMb1
geAwCgYIKoZIzj0EAwIDSAAwRQIgCN3juFYQTpl17aM9+CpqRvEjSXjkdkjRc/4s
bqUbblsCIQDwCRCVRM6HcgwgEdWxSzQcsJ6OYiDXQoLvcmhCKYZB/g==
-----END CERTIFICATE-----
`;
const CERT_V3 = `-----BEGIN CERTIFICATE-----
MIIBcDCCARWgAwIBAgIUDcEL32XEctiyUfRC5dFJYjwzk3owCgYIKoZIzj0EAwIw
DTELMAkGA1UEAwwCdjMwHhcNMjYxMTIxMjM1MjEwWhcNMzYxMTE4MjM1MjEwWjAN
MQswCQYDVQQDDAJ2MzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIoo51YWDewI
f4XMYXuM549i3D7a+x3G5flUZsNlkuD3DIyc8tL3hTs/rkpM/DmB+/oxUNno7Yxi
i+KMHMb1geCjUzBRMB0GA1UdDgQWBBTCpxFcFpNIB20Xxg4b5sh9CLlvqjAfBgNV
HSMEGDAWgBTCpxFcFpNIB20Xxg4b5sh9CLlvqjAPBgNVHRMBAf8EBTADAQH/MAoG
CCqGSM49BAMCA0kAMEYCIQDV02CC3vY2rt77PWmzNM2PocKc4N373llmL/sl++cT
hwIhAI6YdFA3dCCje9E9aCr77ieE7cNslYdQEkbCkkbfmMYZ
-----END CERTIFICATE-----
`;
const KEY = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

const FILES: Record<string, string> = {
  "/etc/consul/token": `  ${TOKEN}\n`,
  "/etc/consul/empty-token": "\n",
  "/etc/consul/ca.pem": CERT_V3,
  "/etc/consul/client.pem": CERT_V3,
  "/etc/consul/client-v1.pem": CERT_V1,
  "/etc/consul/client-key.pem": KEY,
  "/etc/consul/not-pem.txt": "hello",
};

function readTextFile(path: string): string {
  const text = FILES[path];
  if (text === undefined) throw new Deno.errors.NotFound(`No such file: ${path}`);
  return text;
}

function parse(env: Record<string, string>): { config: ConsulConnectionConfig; reader: EnvReader } {
  const reader = new EnvReader(env);
  return { config: parseConsulEnv(reader, readTextFile), reader };
}

function messages(reader: EnvReader): string[] {
  return reader.problems.map((problem) => problem.message);
}

Deno.test("with no variables Consul is the local agent on 127.0.0.1:8500 over http", () => {
  const { config, reader } = parse({});
  assert.deepEqual(config, { baseUrl: "http://127.0.0.1:8500" });
  assert.deepEqual(reader.problems, []);
});

Deno.test("CONSUL_HTTP_ADDR accepts host:port, IPv6 in brackets and http(s) URLs", () => {
  const table: [Record<string, string>, string][] = [
    [{ CONSUL_HTTP_ADDR: "consul.service:8500" }, "http://consul.service:8500"],
    [{ CONSUL_HTTP_ADDR: "[::1]:8500" }, "http://[::1]:8500"],
    [{ CONSUL_HTTP_ADDR: "10.0.0.1:8501", CONSUL_HTTP_SSL: "true" }, "https://10.0.0.1:8501"],
    [{ CONSUL_HTTP_ADDR: "http://consul:8500/" }, "http://consul:8500"],
    [{ CONSUL_HTTP_ADDR: "HTTPS://Consul:8501" }, "https://consul:8501"],
    [{ CONSUL_HTTP_ADDR: "https://consul" }, "https://consul"],
    // An explicit scheme wins over CONSUL_HTTP_SSL, as in the Consul CLI.
    [{ CONSUL_HTTP_ADDR: "http://consul:8500", CONSUL_HTTP_SSL: "true" }, "http://consul:8500"],
    [{ CONSUL_HTTP_SSL: "1" }, "https://127.0.0.1:8500"],
  ];
  for (const [env, baseUrl] of table) {
    const { config, reader } = parse(env);
    assert.equal(config.baseUrl, baseUrl, JSON.stringify(env));
    assert.deepEqual(reader.problems, [], JSON.stringify(env));
  }
});

Deno.test("a unix:// CONSUL_HTTP_ADDR connects through the socket", () => {
  const { config, reader } = parse({ CONSUL_HTTP_ADDR: "unix:///var/run/consul.sock" });
  assert.deepEqual(config, { baseUrl: "http://localhost", socketPath: "/var/run/consul.sock" });
  assert.deepEqual(reader.problems, []);
});

Deno.test("a bad CONSUL_HTTP_ADDR is reported with its value and the default is kept", () => {
  const table: [string, RegExp][] = [
    ["consul", /Cannot parse CONSUL_HTTP_ADDR "consul": .*port/],
    ["consul:http", /Cannot parse CONSUL_HTTP_ADDR "consul:http": .*not a number/],
    ["::1:8500", /Cannot parse CONSUL_HTTP_ADDR "::1:8500": .*brackets/],
    ["ftp://consul:21", /Cannot parse CONSUL_HTTP_ADDR "ftp:\/\/consul:21": expected/],
    [
      "http://consul:8500/v1",
      /Cannot parse CONSUL_HTTP_ADDR "http:\/\/consul:8500\/v1": .*no path/,
    ],
    [
      "http://consul:99999",
      /Cannot parse CONSUL_HTTP_ADDR "http:\/\/consul:99999": not a valid URL/,
    ],
  ];
  for (const [value, expected] of table) {
    const { config, reader } = parse({ CONSUL_HTTP_ADDR: value });
    assert.equal(config.baseUrl, "http://127.0.0.1:8500");
    assert.equal(reader.problems.length, 1, value);
    assert.equal(reader.problems[0]!.variable, "CONSUL_HTTP_ADDR");
    assert.match(reader.problems[0]!.message, expected);
  }
});

Deno.test("credentials inside CONSUL_HTTP_ADDR are refused without echoing them", () => {
  const { reader } = parse({ CONSUL_HTTP_ADDR: "http://admin:s3cret@consul:8500" });
  assert.equal(reader.problems.length, 1);
  assert.match(reader.problems[0]!.message, /must not carry credentials: use CONSUL_HTTP_AUTH/);
  assert.doesNotMatch(JSON.stringify(reader.problems), /s3cret/);
});

Deno.test("the token comes from CONSUL_HTTP_TOKEN or, trimmed, from CONSUL_HTTP_TOKEN_FILE", () => {
  assert.equal(parse({ CONSUL_HTTP_TOKEN: TOKEN }).config.token, TOKEN);
  const fromFile = parse({ CONSUL_HTTP_TOKEN_FILE: "/etc/consul/token", CONSUL_HTTP_TOKEN: "" });
  assert.equal(fromFile.config.token, TOKEN, "the file's content, trimmed");
  assert.deepEqual(fromFile.reader.problems, []);
});

Deno.test("CONSUL_HTTP_TOKEN beside CONSUL_HTTP_TOKEN_FILE is refused without echoing either token", () => {
  const both = parse({
    CONSUL_HTTP_TOKEN: "other-token",
    CONSUL_HTTP_TOKEN_FILE: "/etc/consul/token",
  });
  assert.equal(both.config.token, undefined);
  assert.deepEqual(messages(both.reader), [
    "CONSUL_HTTP_TOKEN and CONSUL_HTTP_TOKEN_FILE are both set: keep one (the file keeps the " +
    "token out of the environment)",
  ]);
  assert.doesNotMatch(JSON.stringify(both.reader.problems), new RegExp(`other-token|${TOKEN}`));
});

Deno.test("an unreadable or empty token file is a problem naming the file", () => {
  const missing = parse({ CONSUL_HTTP_TOKEN_FILE: "/etc/consul/nope" });
  assert.deepEqual(messages(missing.reader), [
    'Cannot read CONSUL_HTTP_TOKEN_FILE "/etc/consul/nope": no such file',
  ]);
  assert.equal(missing.config.token, undefined);
  const empty = parse({ CONSUL_HTTP_TOKEN_FILE: "/etc/consul/empty-token" });
  assert.deepEqual(messages(empty.reader), [
    'CONSUL_HTTP_TOKEN_FILE "/etc/consul/empty-token" is empty',
  ]);
});

Deno.test("a token an HTTP header cannot carry is reported without echoing it", () => {
  const { config, reader } = parse({ CONSUL_HTTP_TOKEN: `${TOKEN} extra` });
  assert.equal(config.token, undefined);
  assert.equal(reader.problems.length, 1);
  assert.equal(reader.problems[0]!.value, undefined);
  assert.doesNotMatch(JSON.stringify(reader.problems), new RegExp(TOKEN));
});

Deno.test("no problem ever carries the token or the basic-auth password", () => {
  const { reader } = parse({
    CONSUL_HTTP_TOKEN: `${TOKEN}\u0001`,
    CONSUL_HTTP_AUTH: ":hunter2",
    CONSUL_HTTP_ADDR: "nonsense",
    CONSUL_CLIENT_CERT: "/etc/consul/client.pem",
  });
  assert.ok(reader.problems.length >= 3, JSON.stringify(reader.problems));
  const all = JSON.stringify(reader.problems);
  assert.doesNotMatch(all, new RegExp(TOKEN));
  assert.doesNotMatch(all, /hunter2/);
});

Deno.test("CONSUL_HTTP_AUTH is user:password, or a user alone", () => {
  assert.deepEqual(parse({ CONSUL_HTTP_AUTH: "ops:pa:ss" }).config.basicAuth, {
    user: "ops",
    password: "pa:ss",
  });
  assert.deepEqual(parse({ CONSUL_HTTP_AUTH: "ops" }).config.basicAuth, {
    user: "ops",
    password: "",
  });
  const empty = parse({ CONSUL_HTTP_AUTH: ":secret" });
  assert.equal(empty.config.basicAuth, undefined);
  assert.match(messages(empty.reader)[0]!, /CONSUL_HTTP_AUTH has an empty user name/);
});

Deno.test("https with a CA and a v3 client certificate gives a full TLS config", () => {
  const { config, reader } = parse({
    CONSUL_HTTP_ADDR: "https://10.0.0.1:8501",
    CONSUL_CACERT: "/etc/consul/ca.pem",
    CONSUL_CLIENT_CERT: "/etc/consul/client.pem",
    CONSUL_CLIENT_KEY: "/etc/consul/client-key.pem",
  });
  assert.deepEqual(reader.problems, []);
  assert.deepEqual(config.tls, {
    caCertPem: CERT_V3,
    certPem: CERT_V3,
    keyPem: KEY,
  });
});

Deno.test("CONSUL_TLS_SERVER_NAME is reported as unsupported, with the way around it", () => {
  const { reader } = parse({
    CONSUL_HTTP_ADDR: "https://10.0.0.1:8501",
    CONSUL_TLS_SERVER_NAME: "server.dc1.consul",
  });
  assert.deepEqual(messages(reader), [
    'CONSUL_TLS_SERVER_NAME "server.dc1.consul" is not supported: put that name in ' +
    "CONSUL_HTTP_ADDR (https://server.dc1.consul:8501) and make it resolve to the agent",
  ]);
});

Deno.test("https without TLS variables verifies against the system roots", () => {
  assert.deepEqual(parse({ CONSUL_HTTP_ADDR: "https://consul:8501" }).config.tls, {});
});

Deno.test("CONSUL_HTTP_SSL_VERIFY=false is refused for https, with the ways around it: Deno cannot skip the check per connection", () => {
  const { reader } = parse({
    CONSUL_HTTP_ADDR: "https://consul:8501",
    CONSUL_HTTP_SSL_VERIFY: "false",
  });
  assert.equal(reader.problems.length, 1);
  assert.equal(reader.problems[0]!.variable, "CONSUL_HTTP_SSL_VERIFY");
  assert.match(
    messages(reader)[0]!,
    /not supported.*CONSUL_CACERT.*unsafely-ignore-certificate-errors/s,
  );
  // Over plain http there is no certificate: the Go resec's setting is harmless and accepted.
  assert.deepEqual(
    messages(parse({ CONSUL_HTTP_ADDR: "consul:8500", CONSUL_HTTP_SSL_VERIFY: "false" }).reader),
    [],
  );
});

Deno.test("TLS file problems: a client cert without its key, a v1 cert, a missing file, no PEM", () => {
  const https = { CONSUL_HTTP_ADDR: "https://consul:8501" };
  assert.deepEqual(
    messages(parse({ ...https, CONSUL_CLIENT_CERT: "/etc/consul/client.pem" }).reader),
    ["CONSUL_CLIENT_CERT is set without CONSUL_CLIENT_KEY: mTLS needs both"],
  );
  assert.deepEqual(
    messages(
      parse({
        ...https,
        CONSUL_CLIENT_CERT: "/etc/consul/client-v1.pem",
        CONSUL_CLIENT_KEY: "/etc/consul/client-key.pem",
      }).reader,
    ),
    [
      'CONSUL_CLIENT_CERT "/etc/consul/client-v1.pem" is an X.509 v1 certificate: ' +
      "Deno needs a v3 client certificate",
    ],
  );
  assert.deepEqual(messages(parse({ ...https, CONSUL_CACERT: "/nope.pem" }).reader), [
    'Cannot read CONSUL_CACERT "/nope.pem": no such file',
  ]);
  assert.deepEqual(messages(parse({ ...https, CONSUL_CACERT: "/etc/consul/not-pem.txt" }).reader), [
    'CONSUL_CACERT "/etc/consul/not-pem.txt" holds no PEM certificate',
  ]);
});

Deno.test("TLS files with a plain-http address are a problem instead of a silent downgrade", () => {
  const { reader } = parse({
    CONSUL_HTTP_ADDR: "consul:8500",
    CONSUL_CACERT: "/etc/consul/ca.pem",
  });
  assert.deepEqual(messages(reader), [
    'CONSUL_CACERT is set but Consul\'s address "http://consul:8500" is not https: ' +
    "set CONSUL_HTTP_SSL=true or use an https:// address",
  ]);
});

Deno.test("CONSUL_CAPATH is reported as unsupported with the alternative", () => {
  assert.match(
    messages(parse({ CONSUL_CAPATH: "/etc/ssl/consul" }).reader)[0]!,
    /CONSUL_CAPATH is not supported: .*CONSUL_CACERT/,
  );
});

Deno.test("namespace and datacenter are read; a datacenter with odd characters is refused", () => {
  const { config } = parse({ CONSUL_NAMESPACE: "team-a", CONSUL_DATACENTER: "eu-west_1" });
  assert.equal(config.namespace, "team-a");
  assert.equal(config.datacenter, "eu-west_1");
  assert.match(
    messages(parse({ CONSUL_DATACENTER: "dc1&x=1" }).reader)[0]!,
    /Cannot parse CONSUL_DATACENTER "dc1&x=1"/,
  );
});

Deno.test("x509Version tells a v1 certificate from a v3 one", () => {
  assert.equal(x509Version(CERT_V1), 1);
  assert.equal(x509Version(CERT_V3), 3);
  assert.equal(x509Version("not a certificate"), undefined);
});
