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

/**
 * Parses `host:port`, `[ipv6]:port` or `ipv6-without-brackets` is refused (ambiguous).
 *
 * @example
 * ```ts
 * parseHostPort("[::1]:6379"); // { host: "::1", port: 6379 }
 * ```
 */
export function parseHostPort(input: string): HostPort {
  const text = input.trim();
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") {
      throw new AddressSyntaxError(input, 'expected "[ipv6]:port"');
    }
    host = text.slice(1, close);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw new AddressSyntaxError(input, 'expected "host:port" with a port');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) {
      throw new AddressSyntaxError(input, 'write an IPv6 address in brackets: "[::1]:6379"');
    }
  }
  if (host === "") throw new AddressSyntaxError(input, "the host is empty");
  if (!/^\d{1,5}$/.test(portText)) {
    throw new AddressSyntaxError(input, `the port "${portText}" is not a number`);
  }
  const port = Number(portText);
  if (port < 1 || port > 65_535) {
    throw new AddressSyntaxError(input, `the port ${port} is outside 1–65535`);
  }
  return { host, port };
}

/** Formats an address back to `host:port`, bracketing IPv6 hosts. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** True for names and addresses that only mean "this machine". */
export function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase();
  return lower === "localhost" || lower === "::1" || lower.startsWith("127.");
}

/** True for the wildcard addresses (`0.0.0.0`, `::`): a listener's, never one a peer can dial. */
export function isUnspecifiedHost(host: string): boolean {
  return host === "::" || /^0+(\.0+){3}$/.test(host) || /^(0{1,4}:){7}0{1,4}$/.test(host);
}

/** True when two addresses name the same endpoint (case-insensitive host). */
export function sameHostPort(a: HostPort, b: HostPort): boolean {
  return a.port === b.port && a.host.toLowerCase() === b.host.toLowerCase();
}
