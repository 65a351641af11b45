/**
 * How to reach the local Redis: `REDIS_*` environment variables → a typed `RedisConnectionConfig` →
 * ioredis options with no offline queue, no silent retries and explicit timeouts.
 */
import type { RedisOptions } from "ioredis";
import { AddressSyntaxError, formatHostPort, parseHostPort } from "../address.ts";
import type { Milliseconds } from "../duration.ts";
import { describeFileError, type EnvReader } from "../env.ts";

/** TLS settings, with PEM texts already read from their files. */
export interface RedisTlsConfig {
  /** CA bundle that signed the server's certificate (default: the built-in roots). */
  caPem?: string;
  /** Client certificate for mutual TLS (needs `keyPem`). */
  certPem?: string;
  keyPem?: string;
  /** Name to verify the server's certificate against (SNI), when it differs from `host`. */
  serverName?: string;
  /** False only when REDIS_TLS_SKIP_VERIFY is set: accept any certificate. */
  rejectUnauthorized: boolean;
}

/** Everything needed to open a connection to one Redis. */
export interface RedisConnectionConfig {
  host: string;
  port: number;
  /** ACL user (Redis ≥ 6); without it the password is for the `default` user. */
  username?: string;
  password?: string;
  tls?: RedisTlsConfig;
}

/** Reads a text file by path; the program passes `Deno.readTextFileSync`, tests pass a stub. */
export type ReadTextFile = (path: string) => string;

/** The variables parseRedisEnv reads, e.g. for `--allow-env`. */
export const REDIS_ENV_VARIABLES = [
  "REDIS_ADDR",
  "REDIS_USERNAME",
  "REDIS_PASSWORD",
  "REDIS_PASSWORD_FILE",
  "REDIS_TLS",
  "REDIS_TLS_CA_CERT",
  "REDIS_TLS_CERT",
  "REDIS_TLS_KEY",
  "REDIS_TLS_SERVER_NAME",
  "REDIS_TLS_SKIP_VERIFY",
] as const;

const DEFAULT_ADDRESS = "127.0.0.1:6379";

/**
 * Reads the `REDIS_*` variables. Problems are recorded on `reader` (and a usable default returned)
 * instead of thrown, so every bad variable is reported at once; the password never appears in one.
 *
 * - `REDIS_ADDR`: `host:port` or `[ipv6]:port` (default `127.0.0.1:6379`); the port is required.
 * - `REDIS_USERNAME`, `REDIS_PASSWORD`: ACL user and password (the password is taken verbatim, spaces
 *   included). `REDIS_PASSWORD_FILE` instead names a file holding the password (a systemd credential),
 *   read once here, its trailing line break dropped; setting both is refused.
 * - `REDIS_TLS`: true to connect with TLS; `REDIS_TLS_CA_CERT`, `REDIS_TLS_CERT`, `REDIS_TLS_KEY` are
 *   paths of PEM files; `REDIS_TLS_SERVER_NAME`; `REDIS_TLS_SKIP_VERIFY` (true: accept any certificate).
 *
 * @example
 * ```ts
 * const reader = new EnvReader({ REDIS_ADDR: "[::1]:6380", REDIS_PASSWORD: "s3cret" });
 * const config = parseRedisEnv(reader, Deno.readTextFileSync);
 * // { host: "::1", port: 6380, password: "s3cret" }
 * reader.assertValid();
 * ```
 */
export function parseRedisEnv(
  reader: EnvReader,
  readTextFile: ReadTextFile,
): RedisConnectionConfig {
  const addressText = reader.string("REDIS_ADDR", DEFAULT_ADDRESS);
  let address = parseHostPort(DEFAULT_ADDRESS);
  try {
    address = parseHostPort(addressText);
  } catch (error) {
    const detail = error instanceof AddressSyntaxError ? error.message : String(error);
    reader.problem(
      "REDIS_ADDR",
      `${detail.replace("Cannot parse address", "Cannot parse REDIS_ADDR")}; for example ` +
        '"127.0.0.1:6379" or "[::1]:6379"',
    );
  }
  const config: RedisConnectionConfig = { host: address.host, port: address.port };

  const username = reader.string("REDIS_USERNAME");
  const password = readPassword(reader, readTextFile);
  if (password !== undefined) config.password = password;
  if (username !== undefined) {
    config.username = username;
    if (config.password === undefined && reader.raw("REDIS_PASSWORD_FILE") === undefined) {
      reader.problem(
        "REDIS_USERNAME",
        `REDIS_USERNAME "${username}" is set without REDIS_PASSWORD: AUTH needs both`,
      );
    }
  }

  const tlsEnabled = reader.boolean("REDIS_TLS", false);
  const tlsFiles = {
    REDIS_TLS_CA_CERT: reader.string("REDIS_TLS_CA_CERT"),
    REDIS_TLS_CERT: reader.string("REDIS_TLS_CERT"),
    REDIS_TLS_KEY: reader.string("REDIS_TLS_KEY"),
  };
  const serverName = reader.string("REDIS_TLS_SERVER_NAME");
  const skipVerify = reader.boolean("REDIS_TLS_SKIP_VERIFY", false);
  if (!tlsEnabled) {
    // Refuse rather than silently connect in plain text when TLS settings are present.
    for (const name of [...Object.keys(tlsFiles), "REDIS_TLS_SERVER_NAME"] as const) {
      if (reader.raw(name) !== undefined) {
        reader.problem(name, `${name} is set but REDIS_TLS is not true: set REDIS_TLS=true`);
      }
    }
    return config;
  }

  const readPem = (name: keyof typeof tlsFiles): string | undefined => {
    const path = tlsFiles[name];
    if (path === undefined) return undefined;
    if (path.includes("-----BEGIN")) {
      // Someone pasted the PEM itself; do not echo it (it may be a private key).
      reader.problem(name, `${name} must be the path of a PEM file, not the PEM text`, {
        secret: true,
      });
      return undefined;
    }
    try {
      const text = readTextFile(path);
      if (!text.includes("-----BEGIN")) {
        reader.problem(name, `${name} "${path}" is not a PEM file: no "-----BEGIN" line`);
        return undefined;
      }
      return text;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      reader.problem(name, `Cannot read ${name} "${path}": ${reason}`);
      return undefined;
    }
  };
  const tls: RedisTlsConfig = { rejectUnauthorized: !skipVerify };
  const caPem = readPem("REDIS_TLS_CA_CERT");
  const certPem = readPem("REDIS_TLS_CERT");
  const keyPem = readPem("REDIS_TLS_KEY");
  if (caPem !== undefined) tls.caPem = caPem;
  if (certPem !== undefined) tls.certPem = certPem;
  if (keyPem !== undefined) tls.keyPem = keyPem;
  if (serverName !== undefined) tls.serverName = serverName;
  if ((tlsFiles.REDIS_TLS_CERT === undefined) !== (tlsFiles.REDIS_TLS_KEY === undefined)) {
    const missing = tlsFiles.REDIS_TLS_CERT === undefined ? "REDIS_TLS_CERT" : "REDIS_TLS_KEY";
    reader.problem(
      missing,
      "REDIS_TLS_CERT and REDIS_TLS_KEY go together (mutual TLS): set both or neither",
    );
  }
  config.tls = tls;
  return config;
}

/**
 * The password from REDIS_PASSWORD or REDIS_PASSWORD_FILE. The variable is taken verbatim (a password
 * may begin or end with spaces; empty means unset); the file loses only its trailing line breaks,
 * which editors and `echo` add and no one means as part of a password.
 */
function readPassword(reader: EnvReader, readTextFile: ReadTextFile): string | undefined {
  const fromEnv = reader.env.REDIS_PASSWORD;
  const password = fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
  const file = reader.raw("REDIS_PASSWORD_FILE");
  if (file === undefined) return password;
  if (password !== undefined) {
    reader.problem(
      "REDIS_PASSWORD_FILE",
      "REDIS_PASSWORD and REDIS_PASSWORD_FILE are both set: keep one (the file keeps the password " +
        "out of the environment)",
    );
    return undefined;
  }
  let text: string;
  try {
    text = readTextFile(file);
  } catch (error) {
    reader.problem(
      "REDIS_PASSWORD_FILE",
      `Cannot read REDIS_PASSWORD_FILE "${file}": ${describeFileError(error)}`,
    );
    return undefined;
  }
  const fromFile = text.replace(/[\r\n]+$/, "");
  if (fromFile === "") {
    reader.problem("REDIS_PASSWORD_FILE", `REDIS_PASSWORD_FILE "${file}" is empty`);
    return undefined;
  }
  return fromFile;
}

/** Options for ioredisOptions. */
export interface IoredisOptionsInput {
  /** Deadline of the TCP/TLS connection and of each command. */
  timeoutMs: Milliseconds;
  /** `CLIENT SETNAME`, shown in `CLIENT LIST` (e.g. `resec-observer`). */
  connectionName?: string;
}

/**
 * Makes ioredis options from a connection config: `lazyConnect` (the caller connects and waits), no
 * offline queue, no automatic reconnection or command retries (our owners decide when to retry), no
 * ready check (it would hide a loading Redis), and explicit connect and command timeouts.
 *
 * @example
 * ```ts
 * const redis = new Redis(ioredisOptions(config, { timeoutMs: 2_000 }));
 * redis.on("error", () => {}); // ioredis prints "Unhandled error event" without a listener
 * await redis.connect();
 * ```
 */
export function ioredisOptions(
  config: RedisConnectionConfig,
  options: IoredisOptionsInput,
): RedisOptions {
  const result: RedisOptions = {
    host: config.host,
    port: config.port,
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: options.timeoutMs,
    commandTimeout: options.timeoutMs,
    // CLIENT SETINFO exists from Redis 7.2 only; skip the round trips.
    disableClientInfo: true,
  };
  if (options.connectionName !== undefined) result.connectionName = options.connectionName;
  if (config.username !== undefined) result.username = config.username;
  if (config.password !== undefined) result.password = config.password;
  if (config.tls) {
    result.tls = {
      rejectUnauthorized: config.tls.rejectUnauthorized,
      ...(config.tls.caPem !== undefined ? { ca: config.tls.caPem } : {}),
      ...(config.tls.certPem !== undefined ? { cert: config.tls.certPem } : {}),
      ...(config.tls.keyPem !== undefined ? { key: config.tls.keyPem } : {}),
      ...(config.tls.serverName !== undefined ? { servername: config.tls.serverName } : {}),
    };
  }
  return result;
}

/**
 * `host:port` of a config, IPv6 bracketed, for messages.
 *
 * @example
 * ```ts
 * redisAddress({ host: "::1", port: 6379 }); // "[::1]:6379"
 * ```
 */
export function redisAddress(config: Pick<RedisConnectionConfig, "host" | "port">): string {
  return formatHostPort(config);
}

/**
 * A config safe to log: the password and key replaced by a marker.
 *
 * @example
 * ```ts
 * logger.info("watching Redis", describeRedisConfig(config));
 * // { address: "127.0.0.1:6379", username: undefined, password: "(set)", tls: false }
 * ```
 */
export function describeRedisConfig(config: RedisConnectionConfig): Record<string, unknown> {
  return {
    address: redisAddress(config),
    username: config.username,
    password: config.password === undefined ? undefined : "(set)",
    tls: config.tls === undefined ? false : {
      ca: config.tls.caPem !== undefined,
      clientCert: config.tls.certPem !== undefined,
      serverName: config.tls.serverName,
      verify: config.tls.rejectUnauthorized,
    },
  };
}
