/**
 * Reading an HTTP body with a size limit: the other side, or anyone who reaches the port, decides
 * how much it sends, and an unbounded read holds all of it in memory.
 */

/**
 * The body as text, or undefined when it is longer than `limit` bytes: then it is read no further (a
 * Content-Length over the limit is not read at all) and the stream is cancelled.
 *
 * @example
 * ```ts
 * const text = await readBoundedText(response, 1_048_576);
 * if (text === undefined) throw new Error("answer too long");
 * ```
 */
export async function readBoundedText(
  message: Request | Response,
  limit: number,
): Promise<string | undefined> {
  const body = message.body;
  if (body === null) return "";
  const declared = Number(message.headers.get("Content-Length") ?? "0");
  if (declared > limit) {
    await body.cancel().catch(() => {});
    return undefined;
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      length += value.byteLength;
      if (length > limit) {
        await reader.cancel().catch(() => {});
        return undefined;
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}
