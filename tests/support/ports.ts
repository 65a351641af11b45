/**
 * Free loopback ports for test servers.
 *
 * Ports come from below the kernel's ephemeral range (32768–60999 by default), so an outgoing connection
 * of another test can never hold a server's port as its local end: a server restarted on its port (a
 * Redis or Consul restart in the chaos tests) finds it free again. Each candidate is bound once to check
 * that nothing listens on it. Ports handed out by this process are remembered so two servers of one
 * module never race for the same one; modules running in parallel draw at random from the same range,
 * and startOnFreePorts retries the rare collision.
 */
const handedOut = new Set<number>();

/** Lowest port handed out: above the well-known and the usual registered server ports. */
const PORT_FLOOR = 20_000;
/** Linux's default ip_local_port_range starts here; client sockets take their local ports from there up. */
const EPHEMERAL_FLOOR = 32_768;

/** Returns a loopback TCP port below the ephemeral range that nothing listens on right now. */
export function freePort(): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_FLOOR + Math.floor(Math.random() * (EPHEMERAL_FLOOR - PORT_FLOOR));
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      continue;
    }
    handedOut.add(port);
    return port;
  }
  throw new Error("Cannot find a free loopback port after 200 attempts");
}

/** True when a server failed to start because its port was taken meanwhile. */
export function isPortTaken(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  return /address already in use/i.test(text);
}

/**
 * Creates and launches a server, starting again on fresh ports (up to three times) when a port handed
 * out as free was taken by another test process before the server bound it.
 */
export async function startOnFreePorts<S extends { stop(): Promise<unknown> }>(
  create: () => S,
  launch: (server: S) => Promise<void>,
): Promise<S> {
  for (let attempt = 1;; attempt++) {
    const server = create();
    try {
      await launch(server);
      return server;
    } catch (error) {
      await server.stop();
      if (attempt >= 3 || !isPortTaken(error)) throw error;
    }
  }
}
