/**
 * A peer's side of failsafe mode: answers the master's signed calls on `POST /v1/failsafe` and keeps
 * the promises it gave (no competing for the lock before one runs out). The rule for granting is the
 * pure `answerCall` (lib/reconciler/failsafe.ts); this file is the HTTP and the bookkeeping.
 */
import { readBoundedText } from "../http/body.ts";
import type { HostPort } from "../address.ts";
import type { Clock } from "../clock.ts";
import type { Milliseconds } from "../duration.ts";
import type { Logger } from "../log.ts";
import { InvalidRecordError } from "../record.ts";
import { answerCall } from "../reconciler/failsafe.ts";
import type { LeaderView, LockView } from "../reconciler/model.ts";
import { type CallSigner, type FailsafeAnswer, parseCall, SIGNATURE_HEADER } from "./call.ts";

/** The longest call body read: a call is under 200 bytes; anything longer is not one. */
export const MAX_CALL_BYTES = 4_096;

/** What the peer's agent knows when a call arrives. */
export interface PeerView {
  readonly lock: LockView;
  readonly leader: LeaderView | null | undefined;
}

/** How a peer answers a call's body: the answer, or why there is none (401 or 400). */
export type PeerReply =
  | { readonly status: 200; readonly answer: FailsafeAnswer }
  | { readonly status: 400 | 401; readonly error: string };

export interface FailsafePeerOptions {
  key: CallSigner;
  /** This agent's announce address. */
  self: HostPort;
  view: () => PeerView;
  /** How long a grant binds this agent: the master's fence bound. */
  leaseMs: Milliseconds;
  clock: Clock;
  logger: Logger;
  /** A new promise was given (the loop re-evaluates). */
  onPromise?: () => void;
}

/** Answers failsafe calls and remembers until when this agent promised not to compete. */
export class FailsafePeer {
  readonly #options: FailsafePeerOptions;
  #promisedUntil: number | undefined;
  #refusing: string | undefined;

  constructor(options: FailsafePeerOptions) {
    this.#options = options;
    // A restarted agent forgot what it promised before: it keeps the longest promise it could have
    // given, so a master still counting on an earlier grant stops before this agent may compete.
    this.#promisedUntil = options.clock.now() + options.leaseMs;
  }

  /** The end of the latest promise given, on the monotonic clock; undefined when none was. */
  promisedUntil(): number | undefined {
    return this.#promisedUntil;
  }

  /**
   * Answers one call: 200 with the grant or the refusal, 401 when the signature does not match the
   * group's key, 400 for a body that is no call, 405 and 413 for the wrong method or size.
   */
  async handle(request: Request): Promise<Response> {
    if (request.method !== "POST") {
      return json(405, { error: "Method not allowed" }, { Allow: "POST" });
    }
    const body = await readBoundedText(request, MAX_CALL_BYTES);
    if (body === undefined) {
      return json(413, { error: `A call has at most ${MAX_CALL_BYTES} bytes` });
    }
    const reply = await this.answer(body, request.headers.get(SIGNATURE_HEADER));
    return reply.status === 200
      ? json(200, reply.answer)
      : json(reply.status, { error: reply.error });
  }

  /**
   * Answers one call's body and signature, the transport aside: the signature checked against the
   * group's key, the body parsed, the grant or refusal given and a granted promise kept.
   */
  async answer(body: string, signature: string | null): Promise<PeerReply> {
    const { key, clock, logger } = this.#options;
    if (!(await key.verify(body, signature))) {
      logger.warn("refused a failsafe call whose signature does not match this group's key");
      return { status: 401, error: "The signature does not match this group's failsafe key" };
    }
    let call;
    try {
      call = parseCall(body);
    } catch (error) {
      if (error instanceof InvalidRecordError) return { status: 400, error: error.message };
      throw error;
    }
    // Taken now, before answering: the promise runs from no earlier than the caller's send time.
    const now = clock.now();
    const answer = answerCall({
      call,
      self: this.#options.self,
      ...this.#options.view(),
      wallNow: clock.wallNow(),
      leaseMs: this.#options.leaseMs,
    });
    if (answer.granted) {
      this.#promisedUntil = Math.max(this.#promisedUntil ?? -Infinity, now + answer.leaseMs);
      if (this.#refusing !== undefined) logger.info("granting the master's failsafe calls again");
      this.#refusing = undefined;
      this.#options.onPromise?.();
    } else if (this.#refusing !== answer.reason) {
      this.#refusing = answer.reason;
      logger.warn("refused a failsafe call", { reason: answer.reason });
    }
    return { status: 200, answer };
  }
}

function json(status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return new Response(`${JSON.stringify(body)}\n`, {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...extra },
  });
}
