/**
 * Failsafe mode in the simulator (docs/failsafe.md): the agents' calls to each other travel over the
 * simulated network, and a signer that answers at once stands in for the group's HMAC key, whose Web
 * Crypto work is real asynchronous I/O that no seed could replay. The real `FailsafeMaster` and
 * `FailsafePeer` (lib/failsafe/) do the rest, built by the real `wireFailsafe`.
 */
import type { HostPort } from "../../lib/address.ts";
import type { CallSigner, FailsafeAnswer } from "../../lib/failsafe/call.ts";
import type { CallSender } from "../../lib/failsafe/master.ts";
import type { FailsafePeer } from "../../lib/failsafe/peer.ts";
import type { Random, Scheduler } from "./scheduler.ts";

/** The port every simulated agent answers failsafe calls on (its HTTP_ADDR). */
export const FAILSAFE_API_PORT = 8080;

/** Every simulated agent holds the same key; a signature is a tag only a holder of it writes. */
export const SIM_SIGNER: CallSigner = {
  sign: (body) => Promise.resolve(signatureOf(body)),
  verify: (body, signature) => Promise.resolve(signature === signatureOf(body)),
};

function signatureOf(body: string): string {
  let hash = 0;
  for (let i = 0; i < body.length; i++) hash = (Math.imul(hash, 31) + body.charCodeAt(i)) | 0;
  return `sim-${(hash >>> 0).toString(16)}`;
}

/** One way of a call between agents: the same few ms as other messages on the simulated LAN. */
function callLatency(rng: Random): number {
  return rng.int(1, 8);
}

/** A host at one end of a call. */
export interface HostEnd {
  /** The host is crashed, or isolated from the other hosts. */
  unreachable(): boolean;
}

/** The caller's end: its agent process hears no answer once it died. */
export interface CallerEnd extends HostEnd {
  alive(): boolean;
}

/** The peer's end: its agent's failsafe peer, when an agent with failsafe mode runs there. */
export interface PeerEnd extends HostEnd {
  peer(): FailsafePeer | undefined;
}

/**
 * The simulated transport of failsafe calls: a call and its answer each take a network delay, and are
 * dropped (the caller's deadline ends the call) while either host is isolated or crashed. An agent
 * that is not running refuses the connection.
 */
export function simCallSender(
  sched: Scheduler,
  rng: Random,
  caller: CallerEnd,
  peerAt: (api: HostPort) => PeerEnd | undefined,
  /** Broken on purpose (the simulator's own test): every reachable agent grants, promising nothing. */
  blindGrants = false,
): CallSender {
  return (api, body, signature, signal) =>
    new Promise<FailsafeAnswer>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      const end = peerAt(api);
      const linked = () =>
        end !== undefined && caller.alive() && !caller.unreachable() && !end.unreachable();
      sched.after(callLatency(rng), "failsafe call", () => {
        if (!linked()) return;
        const peer = end!.peer();
        if (!peer) {
          sched.after(callLatency(rng), "failsafe refused", () => {
            reject(new Error("connection refused: no agent answers there"));
          });
          return;
        }
        const reply = blindGrants
          ? Promise.resolve({
            status: 200 as const,
            answer: { granted: true as const, leaseMs: 0 },
          })
          : peer.answer(body, signature);
        reply.then((reply) => {
          sched.after(callLatency(rng), "failsafe answer", () => {
            if (!linked()) return;
            if (reply.status === 200) resolve(reply.answer);
            else reject(new Error(`failsafe call answered ${reply.status}: ${reply.error}`));
          });
        }, reject);
      });
    });
}
