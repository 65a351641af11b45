/**
 * The program's logger: which levels it keeps, and that a caller can tell when debug lines are dropped.
 */
import assert from "node:assert/strict";
import { configureLogging, silentLogger } from "../../lib/log.ts";

async function loggedAt(level: "debug" | "info"): Promise<{ enabled: boolean; text: string }> {
  const chunks: Uint8Array[] = [];
  const stream = new WritableStream<Uint8Array>({ write: (chunk) => void chunks.push(chunk) });
  let enabled: boolean;
  {
    await using logging = await configureLogging({ level, format: "text", stream });
    const agent = logging.logger.child("agent");
    enabled = agent.isDebugEnabled?.() ?? true;
    agent.debug("a debug line");
  }
  const text = new TextDecoder().decode(
    chunks.reduce((all, chunk) => new Uint8Array([...all, ...chunk]), new Uint8Array()),
  );
  return { enabled, text };
}

Deno.test("at LOG_LEVEL=info the logger says debug lines are dropped, and drops them", async () => {
  const { enabled, text } = await loggedAt("info");
  assert.equal(enabled, false);
  assert.doesNotMatch(text, /a debug line/);
});

Deno.test("at LOG_LEVEL=debug the logger says debug lines are kept, and writes them", async () => {
  const { enabled, text } = await loggedAt("debug");
  assert.equal(enabled, true);
  assert.match(text, /DEBUG resec\.agent: a debug line/);
});

Deno.test("the silent logger says debug lines are dropped", () => {
  assert.equal(silentLogger.isDebugEnabled?.(), false);
});
