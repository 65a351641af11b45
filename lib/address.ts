/**
 * host:port addresses, IPv6 included (`[::1]:6379`), parsed once at the boundary.
 */
import { ResecError } from "./errors.ts";

/** A parsed network address. `host` carries no brackets, even for IPv6. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Thrown when an address is not `host:port`. */
export class AddressSyntaxError extends ResecError {
  override name = "AddressSyntaxError";
  constructor(readonly input: string, detail: string) {
    super(`Cannot parse address "${input}": ${detail}`);
  }
}

/** Why a text is not `host:port`, found by the parsing core both address parsers share. */
export type HostPortFault =
  /** `[` without a matching `]:`. */
  | { readonly kind: "unclosed-bracket" }
  /** No colon at all. */
  | { readonly kind: "no-port" }
  /** A colon in an unbracketed host: an IPv6 address whose port cannot be told apart. */
  | { readonly kind: "unbracketed-ipv6" }
  /** The port is not 1 to 5 digits. */
  | { readonly kind: "port-not-a-number"; readonly portText: string }
  /** The port is outside 1–65535. */
  | { readonly kind: "port-out-of-range"; readonly port: number };

/** A `host:port` text cut in two, before a caller's own rules for the host. */
export interface HostPortParts {
  /** Without brackets; empty for `:port`. */
  readonly host: string;
  /** True when the host was written in brackets (`[::1]:6379`). */
  readonly bracketed: boolean;
  readonly portText: string;
}

/** The highest TCP port. */
const MAX_PORT = 65_535;

/**
 * The shared core of the address parsers: splits a trimmed `host:port` or `[ipv6]:port` into its host
 * and port text, or names the fault. The host is not judged; the port is checked by `parsePort`.
 *
 * @example
 * ```ts
 * splitHostPort("[::1]:6379"); // { host: "::1", bracketed: true, portText: "6379" }
 * splitHostPort("::1:6379");   // { kind: "unbracketed-ipv6" }
 * ```
 */
export function splitHostPort(text: string): HostPortParts | HostPortFault {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return { kind: "unclosed-bracket" };
    return { host: text.slice(1, close), bracketed: true, portText: text.slice(close + 2) };
  }
  const colon = text.lastIndexOf(":");
  if (colon < 0) return { kind: "no-port" };
  const host = text.slice(0, colon);
  if (host.includes(":")) return { kind: "unbracketed-ipv6" };
  return { host, bracketed: false, portText: text.slice(colon + 1) };
}

/**
 * A port from its text: 1 to 5 digits, 1–65535; or the fault.
 *
 * @example
 * ```ts
 * parsePort("6379");  // 6379
 * parsePort("70000"); // { kind: "port-out-of-range", port: 70000 }
 * ```
 */
export function parsePort(portText: string): number | HostPortFault {
  if (!/^\d{1,5}$/.test(portText)) return { kind: "port-not-a-number", portText };
  const port = Number(portText);
  if (port < 1 || port > MAX_PORT) return { kind: "port-out-of-range", port };
  return port;
}

/**
 * True when a step of the parsing core found a fault.
 *
 * @example
 * ```ts
 * const port = parsePort("http");
 * if (isHostPortFault(port)) console.log(port.kind); // "port-not-a-number"
 * ```
 */
export function isHostPortFault(value: unknown): value is HostPortFault {
  return typeof value === "object" && value !== null && "kind" in value;
}

/**
 * Parses `host:port` or `[ipv6]:port`; an IPv6 address without brackets is refused (ambiguous).
 *
 * @throws {AddressSyntaxError} when the text is not such an address.
 *
 * @example
 * ```ts
 * parseHostPort("[::1]:6379");      // { host: "::1", port: 6379 }
 * parseHostPort("redis.local:6379"); // { host: "redis.local", port: 6379 }
 * ```
 */
export function parseHostPort(input: string): HostPort {
  const parts = splitHostPort(input.trim());
  if (isHostPortFault(parts)) throw new AddressSyntaxError(input, describeFault(parts));
  if (parts.host === "") throw new AddressSyntaxError(input, "the host is empty");
  const port = parsePort(parts.portText);
  if (isHostPortFault(port)) throw new AddressSyntaxError(input, describeFault(port));
  return { host: parts.host, port };
}

function describeFault(fault: HostPortFault): string {
  switch (fault.kind) {
    case "unclosed-bracket":
      return 'expected "[ipv6]:port"';
    case "no-port":
      return 'expected "host:port" with a port';
    case "unbracketed-ipv6":
      return 'write an IPv6 address in brackets: "[::1]:6379"';
    case "port-not-a-number":
      return `the port "${fault.portText}" is not a number`;
    case "port-out-of-range":
      return `the port ${fault.port} is outside 1–65535`;
  }
}

/**
 * Formats an address back to `host:port`, bracketing IPv6 hosts.
 *
 * @example
 * ```ts
 * formatHostPort({ host: "::1", port: 6379 }); // "[::1]:6379"
 * ```
 */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/**
 * True for names and addresses that only mean "this machine".
 *
 * @example
 * ```ts
 * isLoopbackHost("127.0.0.1"); // true
 * isLoopbackHost("10.0.0.5"); // false
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase();
  return lower === "localhost" || lower === "::1" || lower.startsWith("127.");
}

/**
 * True for the wildcard addresses (`0.0.0.0`, `::`): a listener's, never one a peer can dial.
 *
 * @example
 * ```ts
 * isUnspecifiedHost("0.0.0.0"); // true
 * isUnspecifiedHost("::1"); // false
 * ```
 */
export function isUnspecifiedHost(host: string): boolean {
  return host === "::" || /^0+(\.0+){3}$/.test(host) || /^(0{1,4}:){7}0{1,4}$/.test(host);
}

/**
 * True when two addresses name the same endpoint (case-insensitive host).
 *
 * @example
 * ```ts
 * sameHostPort({ host: "Redis-1", port: 6379 }, { host: "redis-1", port: 6379 }); // true
 * ```
 */
export function sameHostPort(a: HostPort, b: HostPort): boolean {
  return a.port === b.port && a.host.toLowerCase() === b.host.toLowerCase();
}
