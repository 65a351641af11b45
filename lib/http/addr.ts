/**
 * HTTP_ADDR: where the HTTP API listens.
 */
import { ResecError } from "../errors.ts";
import {
  type HostPort,
  type HostPortFault,
  isHostPortFault,
  parsePort,
  splitHostPort,
} from "../address.ts";
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
  const parts = splitHostPort(text);
  if (isHostPortFault(parts)) throw new HttpAddrSyntaxError(input, describeFault(parts, text));
  const host = parts.bracketed || parts.host !== "" ? parts.host : ALL_INTERFACES;
  if (parts.bracketed && (!IPV6_LITERAL.test(host) || !host.includes(":"))) {
    throw new HttpAddrSyntaxError(input, `${quoteShort(host)} is not an IPv6 address`);
  }
  if (!parts.bracketed && !HOST_NAME_OR_IPV4.test(host)) {
    throw new HttpAddrSyntaxError(input, `${quoteShort(host)} is not a host name or IPv4 address`);
  }
  const port = parsePort(parts.portText);
  if (isHostPortFault(port)) throw new HttpAddrSyntaxError(input, describeFault(port, text));
  return { host, port };
}

/** An IPv6 literal, optionally with a zone (`fe80::1%eth0`). */
const IPV6_LITERAL = /^[0-9a-fA-F:.]+(%[\w.-]+)?$/;

/** A DNS name or an IPv4 address: what may stand before `:port` without brackets. */
const HOST_NAME_OR_IPV4 = /^[a-zA-Z0-9.-]+$/;

/** The fault in HTTP_ADDR's words: its examples use port 8008, and a bare port gets a hint. */
function describeFault(fault: HostPortFault, text: string): string {
  switch (fault.kind) {
    case "unclosed-bracket":
      return 'expected "[ipv6]:port" such as "[::1]:8008"';
    case "no-port":
      return /^\d+$/.test(text)
        ? `a port alone needs a colon: ":${text}" listens on every interface`
        : 'expected "host:port" with a port';
    case "unbracketed-ipv6":
      return 'write an IPv6 address in brackets: "[::1]:8008"';
    case "port-not-a-number":
      return `the port ${quoteShort(fault.portText)} is not a number`;
    case "port-out-of-range":
      return `the port ${fault.port} is outside 1–65535`;
  }
}
