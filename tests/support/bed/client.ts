/**
 * A client application inside the bed, run in a client namespace by BedWriter:
 *
 *   ip netns exec <client ns> deno run --allow-net client.ts --consul=127.0.0.1:8500 \
 *     --service=redis-master --key=resec:bed:writes
 *
 * Like a real application it asks its local Consul agent for the passing master (or, with
 * --sentinels=ip:port,… --master-name=NAME, the Sentinels, as a Sentinel client does), pushes unique
 * values onto a list there with RPUSH, and looks the master up again after a failure. Every outcome is one
 * JSON line on stdout (see WriterEvent). It speaks RESP itself so it needs nothing but --allow-net.
 * SIGTERM ends it after the write in flight.
 */

/** One line of the client's output. `at` is the client's Date.now(). */
export type WriterEvent =
  | { event: "start"; at: number }
  /** The master the client now writes to ("" when Consul names none, or more than one). */
  | { event: "master"; at: number; address: string; node: string; candidates: number }
  | { event: "lookup-failed"; at: number; error: string }
  /** Redis acknowledged the write: it must never be lost. */
  | { event: "ack"; at: number; value: string; address: string; length: number }
  /** Redis refused the write or it was never sent: it was not applied. */
  | { event: "error"; at: number; value: string; address: string; error: string }
  /** The write was sent but no answer came: it may or may not have been applied. */
  | { event: "unknown"; at: number; value: string; address: string; error: string }
  | { event: "stop"; at: number };

interface ClientSettings {
  consul: string;
  service: string;
  /** Sentinels to ask instead of Consul ("ip:port" each); empty: ask Consul. */
  sentinels: string[];
  /** The name the Sentinels monitor the master under. */
  masterName: string;
  key: string;
  prefix: string;
  /** Pause between writes. */
  intervalMs: number;
  /** Ask Consul again at least this often, even while writes succeed. */
  lookupMs: number;
  /** Deadline of a connect and of one write's answer. */
  timeoutMs: number;
  /** Read the catalog with `?stale` (any server answers, leader or not), as Consul's DNS does. */
  stale: boolean;
}

function parseSettings(args: string[]): ClientSettings {
  const settings: ClientSettings = {
    consul: "127.0.0.1:8500",
    service: "redis-master",
    sentinels: [],
    masterName: "",
    key: "resec:bed:writes",
    prefix: "w",
    intervalMs: 5,
    lookupMs: 100,
    timeoutMs: 1_000,
    stale: false,
  };
  for (const arg of args) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!match) throw new Error(`Cannot parse argument "${arg}": expected --name=value`);
    const [, name, value] = match as unknown as [string, string, string];
    const numeric = {
      "interval-ms": "intervalMs",
      "lookup-ms": "lookupMs",
      "timeout-ms": "timeoutMs",
    }[
      name
    ] as "intervalMs" | "lookupMs" | "timeoutMs" | undefined;
    if (numeric) {
      const number = Number(value);
      if (!Number.isFinite(number) || number < 0) {
        throw new Error(`Cannot parse --${name} "${value}": expected milliseconds`);
      }
      settings[numeric] = number;
    } else if (name === "consul" || name === "service" || name === "key" || name === "prefix") {
      settings[name] = value;
    } else if (name === "stale") {
      settings.stale = value === "true";
    } else if (name === "sentinels") {
      settings.sentinels = value.split(",").filter((address) => address !== "");
    } else if (name === "master-name") {
      settings.masterName = value;
    } else {
      throw new Error(`Unknown argument "--${name}"`);
    }
  }
  return settings;
}

/** The pause before asking again when there is no master, or it refused the connection. */
const CONNECT_RETRY_MS = 20;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function emit(event: WriterEvent): void {
  console.log(JSON.stringify(event));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface HealthEntry {
  Node: { Node: string; Address: string };
  Service: { Address: string; Port: number };
}

/** The passing instances of the service, as "ip:port" with their node. */
async function lookUp(settings: ClientSettings): Promise<{ address: string; node: string }[]> {
  const response = await fetch(
    `http://${settings.consul}/v1/health/service/${encodeURIComponent(settings.service)}?passing${
      settings.stale ? "&stale" : ""
    }`,
    { signal: AbortSignal.timeout(settings.timeoutMs) },
  );
  const text = await response.text();
  if (!response.ok) throw new Error(`Consul answered ${response.status}: ${text.trim()}`);
  const entries = JSON.parse(text) as HealthEntry[];
  return entries.map((entry) => ({
    address: `${entry.Service.Address || entry.Node.Address}:${entry.Service.Port}`,
    node: entry.Node.Node,
  }));
}

/**
 * The master the Sentinels name, as Sentinel clients find it: the first Sentinel that answers, starting
 * with the one that answered last (clients move it to the front of their list), so an unreachable one
 * costs a timeout once, not at every look-up.
 */
async function askSentinels(
  settings: ClientSettings,
  order: string[],
): Promise<{ address: string; node: string }[]> {
  let lastError: unknown = new Error("No Sentinel configured");
  for (const sentinel of [...order]) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.open(sentinel, settings.timeoutMs);
      const args = ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", settings.masterName];
      const head = await connection.command(args, settings.timeoutMs);
      order.splice(order.indexOf(sentinel), 1);
      order.unshift(sentinel);
      if (head === "*-1" || head === "*0") return [];
      if (head !== "*2") throw new Error(`Sentinel ${sentinel} answered "${head}"`);
      const [, host, , port] = await connection.lines(4, settings.timeoutMs);
      return [{ address: `${host}:${port}`, node: `sentinel ${sentinel}` }];
    } catch (error) {
      lastError = error;
    } finally {
      connection?.close();
    }
  }
  throw lastError;
}

/** RESP encoding of one command. */
function encodeCommand(args: string[]): Uint8Array {
  const encoder = new TextEncoder();
  let text = `*${args.length}\r\n`;
  for (const arg of args) text += `$${encoder.encode(arg).length}\r\n${arg}\r\n`;
  return encoder.encode(text);
}

/** One TCP connection to one Redis, with one command in flight at a time. */
class Connection {
  #buffer = "";

  private constructor(readonly address: string, readonly conn: Deno.TcpConn) {}

  static async open(address: string, timeoutMs: number): Promise<Connection> {
    const colon = address.lastIndexOf(":");
    const conn = await deadline(
      Deno.connect({ hostname: address.slice(0, colon), port: Number(address.slice(colon + 1)) }),
      timeoutMs,
      "connect",
    );
    return new Connection(address, conn);
  }

  /** Sends the command and returns the reply line: ":3" or "-READONLY …". */
  async command(args: string[], timeoutMs: number): Promise<string> {
    await deadline(this.conn.write(encodeCommand(args)), timeoutMs, "send");
    return (await this.lines(1, timeoutMs))[0]!;
  }

  /** The next `count` reply lines, e.g. the rest of an array reply. */
  async lines(count: number, timeoutMs: number): Promise<string[]> {
    const timer = setTimeout(() => this.close(), timeoutMs);
    try {
      const chunk = new Uint8Array(4096);
      while (this.#buffer.split("\r\n").length <= count) {
        let read: number | null;
        try {
          read = await this.conn.read(chunk);
        } catch (error) {
          throw new Error(`no answer within ${timeoutMs} ms (${messageOf(error)})`);
        }
        if (read === null) throw new Error("connection closed before the answer");
        this.#buffer += new TextDecoder().decode(chunk.subarray(0, read));
      }
    } finally {
      clearTimeout(timer);
    }
    const lines = this.#buffer.split("\r\n");
    this.#buffer = lines.slice(count).join("\r\n");
    return lines.slice(0, count);
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed already */ }
  }
}

async function deadline<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function run(settings: ClientSettings): Promise<void> {
  let running = true;
  Deno.addSignalListener("SIGTERM", () => {
    running = false;
  });
  emit({ event: "start", at: Date.now() });
  let target: { address: string; node: string } | undefined;
  let reported = "\0"; // the master last reported, so changes are reported once
  let lastLookupError = "";
  let lookedUpAt = 0;
  let connection: Connection | undefined;
  let counter = 0;
  const sentinelOrder = [...settings.sentinels];
  while (running) {
    if (!target || Date.now() - lookedUpAt >= settings.lookupMs) {
      lookedUpAt = Date.now();
      try {
        const masters = settings.sentinels.length > 0
          ? await askSentinels(settings, sentinelOrder)
          : await lookUp(settings);
        target = masters.length === 1 ? masters[0] : undefined;
        lastLookupError = "";
        const address = target?.address ?? "";
        if (address !== reported) {
          reported = address;
          emit({
            event: "master",
            at: Date.now(),
            address,
            node: target?.node ?? "",
            candidates: masters.length,
          });
        }
      } catch (error) {
        target = undefined;
        if (messageOf(error) !== lastLookupError) {
          lastLookupError = messageOf(error);
          emit({ event: "lookup-failed", at: Date.now(), error: lastLookupError });
        }
      }
    }
    if (!target) {
      await sleep(CONNECT_RETRY_MS);
      continue;
    }
    const value = `${settings.prefix}${++counter}`;
    const address = target.address;
    try {
      if (connection?.address !== address) {
        connection?.close();
        connection = undefined;
        connection = await Connection.open(address, settings.timeoutMs);
      }
    } catch (error) {
      emit({ event: "error", at: Date.now(), value, address, error: messageOf(error) });
      lookedUpAt = 0;
      // A refused connect returns at once: pause, or a dead master turns this into a hot loop.
      await sleep(CONNECT_RETRY_MS);
      continue;
    }
    try {
      const reply = await connection.command(["RPUSH", settings.key, value], settings.timeoutMs);
      if (reply.startsWith(":")) {
        emit({ event: "ack", at: Date.now(), value, address, length: Number(reply.slice(1)) });
      } else {
        emit({ event: "error", at: Date.now(), value, address, error: reply.replace(/^-/, "") });
        lookedUpAt = 0;
      }
    } catch (error) {
      // Once sending began, Redis may have applied the write whatever went wrong after.
      emit({ event: "unknown", at: Date.now(), value, address, error: messageOf(error) });
      connection.close();
      connection = undefined;
      lookedUpAt = 0;
    }
    if (settings.intervalMs > 0) await sleep(settings.intervalMs);
  }
  connection?.close();
  emit({ event: "stop", at: Date.now() });
}

if (import.meta.main) {
  await run(parseSettings(Deno.args));
  Deno.exit(0); // the SIGTERM listener would otherwise keep the process alive
}
