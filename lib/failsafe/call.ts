/**
 * The failsafe call between agents (FAILSAFE_MODE, docs/failsafe.md): while Consul cannot confirm its
 * lock, the master's agent asks every peer's agent to confirm that it still follows this master and
 * to promise not to compete for a while. This file is the call's wire format and its signature: an
 * HMAC-SHA256 over the exact body with the group's shared key, so no peer that lacks the key is ever
 * believed, in either direction.
 */
import { formatHostPort, type HostPort } from "../address.ts";
import { InvalidRecordError, RecordFields } from "../record.ts";

/** Where an agent answers failsafe calls, on its HTTP API (HTTP_ADDR). */
export const FAILSAFE_PATH = "/v1/failsafe";

/** The header carrying the body's signature, lowercase hex. */
export const SIGNATURE_HEADER = "X-Resec-Signature";

/**
 * How far a call's send time may be from the receiver's wall clock. A recorded call replayed later
 * than this is refused; within it, a replay only repeats a promise the sender already got.
 */
export const CALL_MAX_AGE_MS = 30_000;

/** The shortest shared key accepted: 128 bits. */
export const MIN_KEY_BYTES = 16;

/** What the master's agent sends. */
export interface FailsafeCall {
  /** The caller's announce address: the master the callee must be following. */
  readonly leader: HostPort;
  /** The lock's LockIndex of the caller's term. */
  readonly lockIndex: number;
  /** The caller's wall clock at sending, in ms (replay window only; never a deadline). */
  readonly sentAt: number;
}

/** The callee's answer. */
export type FailsafeAnswer =
  | { readonly granted: true; readonly leaseMs: number }
  | { readonly granted: false; readonly reason: string };

/**
 * The body of a call.
 *
 * @example
 * ```ts
 * encodeCall({ leader: { host: "10.0.0.1", port: 6379 }, lockIndex: 4, sentAt: Date.now() });
 * ```
 */
export function encodeCall(call: FailsafeCall): string {
  return JSON.stringify({
    leader: formatHostPort(call.leader),
    lockIndex: call.lockIndex,
    sentAt: call.sentAt,
  });
}

/**
 * Parses a call's body, every field checked.
 *
 * @throws {InvalidRecordError} when it is not a call an agent could have sent
 */
export function parseCall(body: string): FailsafeCall {
  const fields = RecordFields.parse("failsafe call", body);
  return {
    leader: fields.address("leader"),
    lockIndex: fields.integer("lockIndex", { min: 0 }),
    sentAt: fields.integer("sentAt", { min: 0 }),
  };
}

/**
 * Parses an answer's body.
 *
 * @throws {InvalidRecordError} when it is not an answer an agent could have sent
 */
export function parseAnswer(body: string): FailsafeAnswer {
  const fields = RecordFields.parse("failsafe answer", body);
  if (fields.boolean("granted")) {
    return { granted: true, leaseMs: fields.integer("leaseMs", { min: 0 }) };
  }
  return { granted: false, reason: fields.text("reason") };
}

/**
 * What signs and checks calls: the group's key (`FailsafeKey`) in production; the simulator passes a
 * stand-in that answers without Web Crypto, whose work is real asynchronous I/O.
 */
export interface CallSigner {
  /** The signature of `body`, as the header carries it. */
  sign(body: string): Promise<string>;
  /** Whether `signature` (the header's value) signs `body`. */
  verify(body: string, signature: string | null): Promise<boolean>;
}

/**
 * The group's shared key (FAILSAFE_KEY_FILE's content, surrounding whitespace removed), which signs
 * and checks calls.
 *
 * @example
 * ```ts
 * const key = new FailsafeKey(Deno.readTextFileSync("/etc/resec/failsafe.key"));
 * headers.set(SIGNATURE_HEADER, await key.sign(body));
 * ```
 */
export class FailsafeKey implements CallSigner {
  readonly #key: Promise<CryptoKey>;

  /** @throws {InvalidRecordError} when the key is shorter than MIN_KEY_BYTES */
  constructor(secret: string) {
    const bytes = new TextEncoder().encode(secret.trim());
    if (bytes.length < MIN_KEY_BYTES) {
      throw new InvalidRecordError(
        "failsafe key",
        `it has ${bytes.length} bytes; at least ${MIN_KEY_BYTES} are needed`,
      );
    }
    this.#key = crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
  }

  /** The signature of `body`, as the header carries it (lowercase hex). */
  async sign(body: string): Promise<string> {
    const mac = await crypto.subtle.sign("HMAC", await this.#key, new TextEncoder().encode(body));
    return Array.from(new Uint8Array(mac), (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  /** Whether `signature` (the header's value) signs `body`; checked in constant time. */
  async verify(body: string, signature: string | null): Promise<boolean> {
    if (signature === null || !/^[0-9a-f]{64}$/.test(signature)) return false;
    const bytes = new Uint8Array(32);
    for (let i = 0; i < 32; i++) bytes[i] = parseInt(signature.slice(2 * i, 2 * i + 2), 16);
    return await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      bytes,
      new TextEncoder().encode(body),
    );
  }
}
