/**
 * Where Consul is and how to authenticate, read from the Consul CLI's own environment variables so an
 * operator configures resec exactly like the `consul` command.
 */
import { AddressSyntaxError, formatHostPort, parseHostPort } from "../address.ts";
import { describeFileError, type EnvReader } from "../env.ts";

/** TLS settings for an `https://` Consul address. */
export interface ConsulTlsConfig {
  /** PEM of the CA(s) that signed Consul's certificate, in addition to the system roots. */
  caCertPem?: string;
  /** PEM of the client certificate (X.509 v3) for mTLS; always paired with `keyPem`. */
  certPem?: string;
  /** PEM of the client certificate's private key. */
  keyPem?: string;
  /**
   * The name to verify Consul's certificate against when it differs from the address' host. Deno's
   * fetch cannot do this: parseConsulEnv reports CONSUL_TLS_SERVER_NAME as a problem, and ConsulClient
   * warns and verifies against the address' host.
   */
  serverName?: string;
}

/** How to reach and authenticate to one Consul agent. */
export interface ConsulConnectionConfig {
  /** Origin of the HTTP API, e.g. `http://127.0.0.1:8500` (no trailing slash). */
  baseUrl: string;
  /** For `unix://` addresses: the socket to connect to; `baseUrl` is then `http://localhost`. */
  socketPath?: string;
  /** The ACL token, sent as `X-Consul-Token`. Secret: never log it. */
  token?: string;
  /** HTTP basic auth (CONSUL_HTTP_AUTH), for a proxy in front of Consul. Secret. */
  basicAuth?: { user: string; password: string };
  tls?: ConsulTlsConfig;
  /** Consul Enterprise namespace (`?ns=`). */
  namespace?: string;
  /** Datacenter for catalog, health, KV and session calls (`?dc=`); default: the agent's own. */
  datacenter?: string;
}

/** The address the Consul CLI uses when CONSUL_HTTP_ADDR is unset. */
export const DEFAULT_CONSUL_ADDRESS = "127.0.0.1:8500";

/**
 * Reads the Consul CLI's environment variables into a connection config, recording every problem on
 * `reader` (never the token or the basic-auth password) instead of throwing.
 *
 * CONSUL_HTTP_TOKEN_FILE names a file holding the token (a systemd credential), read once here and
 * trimmed; setting it beside CONSUL_HTTP_TOKEN is refused. CONSUL_HTTP_SSL only matters for an
 * address without a scheme.
 *
 * @example
 * ```ts
 * const reader = new EnvReader({ CONSUL_HTTP_ADDR: "https://consul:8501" });
 * const config = parseConsulEnv(reader, Deno.readTextFileSync);
 * config.baseUrl; // "https://consul:8501"
 * ```
 */
export function parseConsulEnv(
  reader: EnvReader,
  readTextFile: (path: string) => string,
): ConsulConnectionConfig {
  const ssl = reader.boolean("CONSUL_HTTP_SSL", false);
  const verify = reader.boolean("CONSUL_HTTP_SSL_VERIFY", true);
  const address = parseConsulAddress(reader, ssl);
  const config: ConsulConnectionConfig = { baseUrl: address.baseUrl };
  if (address.socketPath !== undefined) config.socketPath = address.socketPath;

  const token = readToken(reader, readTextFile);
  if (token !== undefined) config.token = token;

  const auth = reader.raw("CONSUL_HTTP_AUTH");
  if (auth !== undefined) {
    const colon = auth.indexOf(":");
    const user = colon < 0 ? auth : auth.slice(0, colon);
    const password = colon < 0 ? "" : auth.slice(colon + 1);
    if (user === "") {
      reader.problem(
        "CONSUL_HTTP_AUTH",
        'CONSUL_HTTP_AUTH has an empty user name: expected "user:password"',
        { secret: true },
      );
    } else {
      config.basicAuth = { user, password };
    }
  }

  const tls = readTls(reader, readTextFile);
  const https = config.baseUrl.startsWith("https:");
  if (https && !verify) {
    // Deno.createHttpClient has no option to skip verification; only a process-wide Deno flag does.
    reader.problem(
      "CONSUL_HTTP_SSL_VERIFY",
      "CONSUL_HTTP_SSL_VERIFY=false is not supported: Deno cannot skip the check of Consul's " +
        "certificate for one connection. Unset it and give the CA that signed that certificate " +
        "with CONSUL_CACERT (or, running the bundle with `deno run`, add " +
        "--unsafely-ignore-certificate-errors=<Consul's host> to Deno's flags)",
    );
  }
  if (https) {
    config.tls = tls ?? {};
  } else if (tls !== undefined) {
    const names = [
      "CONSUL_CACERT",
      "CONSUL_CLIENT_CERT",
      "CONSUL_CLIENT_KEY",
      "CONSUL_TLS_SERVER_NAME",
    ]
      .filter((name) => reader.raw(name) !== undefined);
    if (names.length > 0) {
      reader.problem(
        names[0]!,
        `${names.join(", ")} ${names.length === 1 ? "is" : "are"} set but Consul's address ` +
          `"${config.baseUrl}" is not https: set CONSUL_HTTP_SSL=true or use an https:// address`,
      );
    }
  }
  if (reader.raw("CONSUL_CAPATH") !== undefined) {
    reader.problem(
      "CONSUL_CAPATH",
      "CONSUL_CAPATH is not supported: put the CA certificates in one PEM file and set CONSUL_CACERT",
    );
  }

  const namespace = reader.raw("CONSUL_NAMESPACE");
  if (namespace !== undefined) config.namespace = namespace;
  const datacenter = reader.raw("CONSUL_DATACENTER");
  if (datacenter !== undefined) {
    if (/^[A-Za-z0-9_.-]+$/.test(datacenter)) {
      config.datacenter = datacenter;
    } else {
      reader.problem(
        "CONSUL_DATACENTER",
        `Cannot parse CONSUL_DATACENTER "${datacenter}": expected letters, digits, "-", "_" or "."`,
      );
    }
  }
  return config;
}

function parseConsulAddress(
  reader: EnvReader,
  ssl: boolean,
): { baseUrl: string; socketPath?: string } {
  const fallback = { baseUrl: `${ssl ? "https" : "http"}://${DEFAULT_CONSUL_ADDRESS}` };
  const text = reader.raw("CONSUL_HTTP_ADDR");
  if (text === undefined) return fallback;
  const bad = (detail: string) => {
    reader.problem("CONSUL_HTTP_ADDR", `Cannot parse CONSUL_HTTP_ADDR "${text}": ${detail}`);
    return fallback;
  };
  if (text.startsWith("unix://")) {
    const path = text.slice("unix://".length);
    if (path === "") return bad('expected "unix:///path/to/consul.sock"');
    return { baseUrl: "http://localhost", socketPath: path };
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (scheme !== "http" && scheme !== "https") {
      return bad('expected "host:port", "http://host:port", "https://host:port" or "unix://path"');
    }
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return bad("not a valid URL");
    }
    if (url.username !== "" || url.password !== "") {
      // The URL may carry a password: do not echo it.
      reader.problem(
        "CONSUL_HTTP_ADDR",
        "CONSUL_HTTP_ADDR must not carry credentials: use CONSUL_HTTP_AUTH",
        { secret: true },
      );
      return fallback;
    }
    if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
      return bad("expected no path or query after the host and port");
    }
    return { baseUrl: url.origin };
  }
  try {
    const hostPort = parseHostPort(text);
    return { baseUrl: `${ssl ? "https" : "http"}://${formatHostPort(hostPort)}` };
  } catch (error) {
    if (!(error instanceof AddressSyntaxError)) throw error;
    return bad(
      error.message.replace(/^Cannot parse address "[^"]*": /, "") +
        ' (expected "host:port", or a URL such as "https://consul:8501")',
    );
  }
}

function readToken(
  reader: EnvReader,
  readTextFile: (path: string) => string,
): string | undefined {
  let token = reader.raw("CONSUL_HTTP_TOKEN");
  let source = "CONSUL_HTTP_TOKEN";
  const tokenFile = reader.raw("CONSUL_HTTP_TOKEN_FILE");
  if (tokenFile !== undefined && token !== undefined) {
    // The Consul CLI lets the file win; two sources of one secret are more likely a mistake.
    reader.problem(
      "CONSUL_HTTP_TOKEN_FILE",
      "CONSUL_HTTP_TOKEN and CONSUL_HTTP_TOKEN_FILE are both set: keep one (the file keeps the " +
        "token out of the environment)",
    );
    return undefined;
  }
  if (tokenFile !== undefined) {
    source = "CONSUL_HTTP_TOKEN_FILE";
    try {
      token = readTextFile(tokenFile).trim();
    } catch (error) {
      reader.problem(
        "CONSUL_HTTP_TOKEN_FILE",
        `Cannot read CONSUL_HTTP_TOKEN_FILE "${tokenFile}": ${describeFileError(error)}`,
      );
      return undefined;
    }
    if (token === "") {
      reader.problem("CONSUL_HTTP_TOKEN_FILE", `CONSUL_HTTP_TOKEN_FILE "${tokenFile}" is empty`);
      return undefined;
    }
  }
  // A token that cannot go into an HTTP header would fail every request with a confusing message.
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    reader.problem(
      source,
      `The token in ${source} contains spaces or characters an HTTP header cannot carry`,
      { secret: true },
    );
    return undefined;
  }
  return token;
}

function readTls(
  reader: EnvReader,
  readTextFile: (path: string) => string,
): ConsulTlsConfig | undefined {
  const tls: ConsulTlsConfig = {};
  let any = false;
  const readPem = (variable: string, label: "CERTIFICATE" | "PRIVATE KEY") => {
    const path = reader.raw(variable);
    if (path === undefined) return undefined;
    any = true;
    let text: string;
    try {
      text = readTextFile(path);
    } catch (error) {
      reader.problem(variable, `Cannot read ${variable} "${path}": ${describeFileError(error)}`);
      return undefined;
    }
    if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text)) {
      reader.problem(variable, `${variable} "${path}" holds no PEM ${label.toLowerCase()}`);
      return undefined;
    }
    return text;
  };
  const ca = readPem("CONSUL_CACERT", "CERTIFICATE");
  if (ca !== undefined) tls.caCertPem = ca;
  const cert = readPem("CONSUL_CLIENT_CERT", "CERTIFICATE");
  const key = readPem("CONSUL_CLIENT_KEY", "PRIVATE KEY");
  const certSet = reader.raw("CONSUL_CLIENT_CERT") !== undefined;
  const keySet = reader.raw("CONSUL_CLIENT_KEY") !== undefined;
  if (certSet !== keySet) {
    const missing = certSet ? "CONSUL_CLIENT_KEY" : "CONSUL_CLIENT_CERT";
    const present = certSet ? "CONSUL_CLIENT_CERT" : "CONSUL_CLIENT_KEY";
    reader.problem(present, `${present} is set without ${missing}: mTLS needs both`);
  } else if (cert !== undefined && key !== undefined) {
    const version = x509Version(cert);
    if (version !== undefined && version < 3) {
      const path = reader.raw("CONSUL_CLIENT_CERT");
      reader.problem(
        "CONSUL_CLIENT_CERT",
        `CONSUL_CLIENT_CERT "${path}" is an X.509 v${version} certificate: ` +
          "Deno needs a v3 client certificate",
      );
    } else {
      tls.certPem = cert;
      tls.keyPem = key;
    }
  }
  const serverName = reader.raw("CONSUL_TLS_SERVER_NAME");
  if (serverName !== undefined) {
    any = true;
    // Deno's fetch has no SNI override: it always verifies against the address' host.
    reader.problem(
      "CONSUL_TLS_SERVER_NAME",
      `CONSUL_TLS_SERVER_NAME "${serverName}" is not supported: put that name in ` +
        `CONSUL_HTTP_ADDR (https://${serverName}:8501) and make it resolve to the agent`,
    );
  }
  return any ? tls : undefined;
}

/**
 * The X.509 version (1–3) of the first certificate in a PEM text, or undefined when it cannot be told.
 * Deno refuses v1 client certificates with an opaque error at connect time; checking here gives the
 * operator a clear message at startup.
 */
export function x509Version(pem: string): number | undefined {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (!match) return undefined;
  let der: Uint8Array;
  try {
    der = Uint8Array.from(atob(match[1]!.replace(/\s+/g, "")), (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
  // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] EXPLICIT version OPTIONAL, ... } ... }
  let offset = 0;
  const enterSequence = (): boolean => {
    if (der[offset] !== 0x30) return false;
    offset += 1;
    const first = der[offset];
    if (first === undefined) return false;
    offset += first < 0x80 ? 1 : 1 + (first & 0x7f);
    return offset < der.length;
  };
  if (!enterSequence() || !enterSequence()) return undefined;
  if (der[offset] !== 0xa0) return 1; // no version field: v1
  // a0 03 02 01 <v>: [0] { INTEGER v } where v = version - 1
  if (der[offset + 2] !== 0x02 || der[offset + 3] !== 0x01) return undefined;
  const value = der[offset + 4];
  return value === undefined ? undefined : value + 1;
}
