/**
 * Free loopback ports for test servers.
 *
 * The kernel hands out an unused ephemeral port; we close the listener at once and the server binds it a
 * moment later. Ports handed out by this process are remembered so two servers of one module never race
 * for the same one; modules running in parallel draw from the kernel's random ephemeral range.
 */
const handedOut = new Set<number>();

/** Returns a loopback TCP port that nothing listens on right now. */
export function freePort(): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("Cannot find a free loopback port after 50 attempts");
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
