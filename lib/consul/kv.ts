/**
 * Consul's key/value store: reads (optionally blocking), writes with check-and-set, and the session
 * lock operations `?acquire=` / `?release=`.
 */
import type { Milliseconds } from "../duration.ts";
import {
  type ConsulClient,
  DEFAULT_BLOCKING_WAIT_MS,
  encodePath,
  type ResponseMeta,
} from "./client.ts";
import {
  asArray,
  asBoolean,
  asObject,
  indexField,
  optionalStringField,
  stringField,
  unsignedField,
} from "./decode.ts";
import { BlockingWatch, type WatchOptions } from "./watch.ts";

/** One key as Consul stores it. */
export interface KvEntry {
  key: string;
  /** The value as UTF-8 text (lossy for binary values; see `bytes`). */
  value: string;
  bytes: Uint8Array;
  /** The session holding the key's lock, if any. */
  session?: string;
  /** How many times the key's lock was acquired: with key and session, a fencing sequencer. */
  lockIndex: number;
  modifyIndex: number;
  createIndex: number;
  /** Opaque flags. Above 2^53 they lose precision: JSON numbers are doubles here. */
  flags: number;
}

export interface ReadKeyOptions {
  /** Block until the key's index passes this one (from a previous read's `index`). */
  index?: number;
  /** Longest wait of a blocking read (default 5 min, Consul's own default). */
  waitMs?: Milliseconds;
  /** Read through a quorum round trip (`?consistent`) rather than from the leader alone. */
  consistent?: boolean;
  signal?: AbortSignal;
}

export interface ReadKeyResult {
  /** Undefined when the key does not exist. */
  entry?: KvEntry;
  /** X-Consul-Index: pass it back as `index` to block for a change. */
  index: number;
  meta: ResponseMeta;
}

export interface ListPrefixResult {
  entries: KvEntry[];
  index: number;
  meta: ResponseMeta;
}

/**
 * Reads one key; a missing key is `{ entry: undefined }`, not an error.
 *
 * @example
 * ```ts
 * const { entry, index } = await readKey(client, "resec/.lock");
 * const next = await readKey(client, "resec/.lock", { index, waitMs: 30_000 }); // waits for a change
 * ```
 */
export async function readKey(
  client: ConsulClient,
  key: string,
  options: ReadKeyOptions = {},
): Promise<ReadKeyResult> {
  const response = await client.request({
    method: "GET",
    path: `/v1/kv/${encodePath(key)}`,
    endpoint: "kv.read",
    action: `reading key "${key}"`,
    acceptStatus: [404],
    ...readOptions(options),
    decode: (json) => asArray(json, "the key list").map(decodeEntry),
  });
  const entry = response.value?.[0];
  return {
    ...(entry ? { entry } : {}),
    index: response.meta.index ?? 0,
    meta: response.meta,
  };
}

/**
 * Reads every key under a prefix (`?recurse`); none is an empty list.
 *
 * @example
 * ```ts
 * const { entries, index } = await listPrefix(client, "resec/.lock.candidates/");
 * for (const entry of entries) console.log(entry.key, entry.value);
 * ```
 */
export async function listPrefix(
  client: ConsulClient,
  prefix: string,
  options: ReadKeyOptions = {},
): Promise<ListPrefixResult> {
  const response = await client.request({
    method: "GET",
    path: `/v1/kv/${encodePath(prefix)}`,
    endpoint: "kv.list",
    query: { recurse: true },
    action: `listing keys under "${prefix}"`,
    acceptStatus: [404],
    ...readOptions(options),
    decode: (json) => asArray(json, "the key list").map(decodeEntry),
  });
  return { entries: response.value ?? [], index: response.meta.index ?? 0, meta: response.meta };
}

/**
 * Watches one key, yielding its entry (undefined while it does not exist) first and on each change.
 *
 * @example
 * ```ts
 * await using watch = watchKey(client, "resec/.lock");
 * for await (const entry of watch) console.log(entry?.session ?? "free");
 * ```
 */
export function watchKey(
  client: ConsulClient,
  key: string,
  options: { consistent?: boolean } & Omit<WatchOptions<KvEntry | undefined>, "fetch"> = {},
): BlockingWatch<KvEntry | undefined> {
  const { consistent, ...watchOptions } = options;
  return new BlockingWatch({
    name: `key ${key}`,
    clock: client.clock,
    logger: client.logger,
    ...watchOptions,
    fetch: async ({ index, waitMs, signal }) => {
      const result = await readKey(client, key, { index, waitMs, signal, consistent });
      return { value: result.entry, index: result.index };
    },
  });
}

/**
 * Watches every key under a prefix, yielding the list first and on each change.
 *
 * @example
 * ```ts
 * await using watch = watchPrefix(client, "resec/.lock.candidates/");
 * for await (const entries of watch) console.log(entries.length, "candidacies");
 * ```
 */
export function watchPrefix(
  client: ConsulClient,
  prefix: string,
  options: Omit<WatchOptions<KvEntry[]>, "fetch"> = {},
): BlockingWatch<KvEntry[]> {
  return new BlockingWatch({
    name: `prefix ${prefix}`,
    clock: client.clock,
    logger: client.logger,
    ...options,
    fetch: async ({ index, waitMs, signal }) => {
      const result = await listPrefix(client, prefix, { index, waitMs, signal });
      return { value: result.entries, index: result.index };
    },
  });
}

export interface PutKeyOptions {
  /** Write only if the key's ModifyIndex is this one (0: only if the key does not exist). */
  cas?: number;
  /** A bigint keeps values above 2^53 exact (the Go lock helper's flag is one). */
  flags?: number | bigint;
  signal?: AbortSignal;
}

/**
 * Writes a key; false when a `cas` condition failed.
 *
 * @example
 * ```ts
 * await putKey(client, "resec/.lock.paused", '{"reason":"upgrade"}');
 * const created = await putKey(client, "resec/.lock.switchover", "{}", { cas: 0 }); // false if it exists
 * ```
 */
export async function putKey(
  client: ConsulClient,
  key: string,
  value: string | Uint8Array,
  options: PutKeyOptions = {},
): Promise<boolean> {
  return await writeKey(client, key, value, { cas: options.cas, flags: options.flags }, options);
}

/**
 * Takes the key's lock for `session` and sets its value. False when another session holds it, or when
 * a lock-delay from an invalidated holder is still running.
 *
 * @example
 * ```ts
 * const held = await acquireKey(client, "resec/.lock", session, '{"address":"10.0.0.5:6379"}');
 * ```
 */
export async function acquireKey(
  client: ConsulClient,
  key: string,
  session: string,
  value: string | Uint8Array,
  options: { flags?: number | bigint; signal?: AbortSignal } = {},
): Promise<boolean> {
  return await writeKey(client, key, value, { acquire: session, flags: options.flags }, options);
}

/**
 * Gives the key's lock back. Consul stores the body as the new value, so without `value` the key is
 * left empty, and the flags too: without `flags` they become 0. False when `session` did not hold it.
 *
 * @example
 * ```ts
 * await releaseKey(client, "resec/.lock", session); // the key stays, empty and unheld
 * ```
 */
export async function releaseKey(
  client: ConsulClient,
  key: string,
  session: string,
  value: string | Uint8Array = "",
  options: { flags?: number | bigint; signal?: AbortSignal } = {},
): Promise<boolean> {
  return await writeKey(client, key, value, { release: session, flags: options.flags }, options);
}

/**
 * Deletes a key (or, with `recurse`, a prefix); false when a `cas` condition failed.
 *
 * @example
 * ```ts
 * await deleteKey(client, "resec/.lock.paused");
 * await deleteKey(client, "resec/.lock.switchover", { cas: entry.modifyIndex }); // false if it changed
 * ```
 */
export async function deleteKey(
  client: ConsulClient,
  key: string,
  options: { cas?: number; recurse?: boolean; signal?: AbortSignal } = {},
): Promise<boolean> {
  const response = await client.request({
    method: "DELETE",
    path: `/v1/kv/${encodePath(key)}`,
    endpoint: "kv.delete",
    query: { cas: options.cas, recurse: options.recurse },
    action: `deleting key "${key}"`,
    signal: options.signal,
    decode: (json) => asBoolean(json, "the answer"),
  });
  return response.value ?? false;
}

async function writeKey(
  client: ConsulClient,
  key: string,
  value: string | Uint8Array,
  query: Record<string, string | number | bigint | undefined>,
  options: { signal?: AbortSignal },
): Promise<boolean> {
  const response = await client.request({
    method: "PUT",
    path: `/v1/kv/${encodePath(key)}`,
    endpoint: query.acquire ? "kv.acquire" : query.release ? "kv.release" : "kv.write",
    query,
    body: value,
    action: `writing key "${key}"`,
    signal: options.signal,
    decode: (json) => asBoolean(json, "the answer"),
  });
  return response.value ?? false;
}

function readOptions(options: ReadKeyOptions) {
  return {
    signal: options.signal,
    consistency: options.consistent ? "consistent" as const : undefined,
    blocking: options.index !== undefined && options.index > 0
      ? { index: options.index, waitMs: options.waitMs ?? DEFAULT_BLOCKING_WAIT_MS }
      : undefined,
  };
}

/**
 * Decodes one entry of `GET /v1/kv/<key>`.
 *
 * @example
 * ```ts
 * decodeEntry({ Key: "a", Value: "aGk=", Flags: 0, LockIndex: 0, ModifyIndex: 7, CreateIndex: 7 });
 * // { key: "a", value: "hi", modifyIndex: 7, … }
 * ```
 */
export function decodeEntry(json: unknown, position = 0): KvEntry {
  const what = `entry ${position}`;
  const object = asObject(json, what);
  const raw = object.Value;
  let bytes: Uint8Array;
  if (raw === null || raw === undefined) {
    bytes = new Uint8Array();
  } else if (typeof raw === "string") {
    try {
      bytes = Uint8Array.from(atob(raw), (char) => char.charCodeAt(0));
    } catch {
      throw new TypeError(`expected ${what}.Value to be base64`);
    }
  } else {
    throw new TypeError(`expected ${what}.Value to be base64 text`);
  }
  const session = optionalStringField(object, "Session", what);
  return {
    key: stringField(object, "Key", what),
    value: new TextDecoder().decode(bytes),
    bytes,
    ...(session ? { session } : {}),
    lockIndex: indexField(object, "LockIndex", what),
    modifyIndex: indexField(object, "ModifyIndex", what),
    createIndex: indexField(object, "CreateIndex", what),
    flags: unsignedField(object, "Flags", what),
  };
}
