/**
 * HTTP_ADDR: where the HTTP API listens.
 */
import { ResecError } from "../errors.ts";
import type { HostPort } from "../address.ts";
import { quoteShort } from "./lag.ts";

/** The host `:port` listens on: every IPv4 interface (write `[::]:port` for IPv6). */
export const ALL_INTERFACES = "0.0.0.0";

/** Thrown when HTTP_ADDR is not a listen address. */
export class HttpAddrSyntaxError extends ResecError {
  override name = "HttpAddrSyntaxError";
  constructor(readonly input: string, detail: string) {
    super(`Cannot parse HTTP address ${quoteShort(input)}: ${detail}`);
  }
}

/**
 * Parses a listen address: `host:port`, `[ipv6]:port`, or `:port` for every IPv4 interface
 * (`0.0.0.0`). The port must be 1–65535; no scheme, no path.
 *
 * @example
 * ```ts
 * parseHttpAddr("127.0.0.1:8008"); // { host: "127.0.0.1", port: 8008 }
 * parseHttpAddr("[::1]:8008");     // { host: "::1", port: 8008 }
 * parseHttpAddr(":8008");          // { host: "0.0.0.0", port: 8008 }
 * ```
 */
export function parseHttpAddr(input: string): HostPort {
  const text = input.trim();
  if (text === "") {
    throw new HttpAddrSyntaxError(input, 'expected "host:port" such as "127.0.0.1:8008"');
  }
  if (text.includes("://") || text.includes("/")) {
    throw new HttpAddrSyntaxError(
      input,
      'write "host:port" without a scheme or path, such as "127.0.0.1:8008"',
    );
  }
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") {
      throw new HttpAddrSyntaxError(input, 'expected "[ipv6]:port" such as "[::1]:8008"');
    }
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!/^[0-9a-fA-F:.]+(%[\w.-]+)?$/.test(host) || !host.includes(":")) {
      throw new HttpAddrSyntaxError(input, `${quoteShort(host)} is not an IPv6 address`);
    }
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) {
      throw new HttpAddrSyntaxError(
        input,
        /^\d+$/.test(text)
          ? `a port alone needs a colon: ":${text}" listens on every interface`
          : 'expected "host:port" with a port',
      );
    }
    host = colon === 0 ? ALL_INTERFACES : text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) {
      throw new HttpAddrSyntaxError(input, 'write an IPv6 address in brackets: "[::1]:8008"');
    }
    if (!/^[a-zA-Z0-9.-]+$/.test(host)) {
      throw new HttpAddrSyntaxError(
        input,
        `${quoteShort(host)} is not a host name or IPv4 address`,
      );
    }
  }
  if (!/^\d{1,5}$/.test(portText)) {
    throw new HttpAddrSyntaxError(input, `the port ${quoteShort(portText)} is not a number`);
  }
  const port = Number(portText);
  if (port < 1 || port > 65_535) {
    throw new HttpAddrSyntaxError(input, `the port ${port} is outside 1–65535`);
  }
  return { host, port };
}
