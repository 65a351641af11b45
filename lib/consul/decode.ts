/**
 * Shape checks for Consul's JSON answers. Each throws a TypeError naming the field, which the client
 * turns into a ConsulMalformedResponseError; past this point the types are trusted.
 */

export type JsonObject = Record<string, unknown>;

export function asObject(value: unknown, what: string): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`expected ${what} to be an object, got ${describe(value)}`);
  }
  return value as JsonObject;
}

/** An array; Consul answers `null` for an empty list on some endpoints. */
export function asArray(value: unknown, what: string): unknown[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new TypeError(`expected ${what} to be a list, got ${describe(value)}`);
  }
  return value;
}

export function stringField(object: JsonObject, key: string, what: string): string {
  const value = object[key];
  if (typeof value !== "string") {
    throw new TypeError(`expected ${what}.${key} to be a string, got ${describe(value)}`);
  }
  return value;
}

export function optionalStringField(
  object: JsonObject,
  key: string,
  what: string,
): string | undefined {
  const value = object[key];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") {
    throw new TypeError(`expected ${what}.${key} to be a string, got ${describe(value)}`);
  }
  return value;
}

export function numberField(object: JsonObject, key: string, what: string): number {
  const value = object[key];
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`expected ${what}.${key} to be a number, got ${describe(value)}`);
  }
  return value;
}

/**
 * A whole number from 0 up: Consul's counters and flags are uint64, which JSON.parse may round above
 * 2^53 (the Go resec's lock flags do) but never makes fractional or negative.
 */
export function unsignedField(object: JsonObject, key: string, what: string): number {
  const value = object[key];
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`expected ${what}.${key} to be a whole number, got ${describe(value)}`);
  }
  return value;
}

/**
 * A Raft index (CreateIndex, ModifyIndex, LockIndex): a whole number below 2^53, so it compares,
 * goes back into `?index=` and serves as a fencing epoch exactly.
 */
export function indexField(object: JsonObject, key: string, what: string): number {
  const value = unsignedField(object, key, what);
  if (!Number.isSafeInteger(value)) {
    throw new TypeError(
      `expected ${what}.${key} to be an index below 2^53, got ${describe(value)}`,
    );
  }
  return value;
}

/** A TCP port: 0 (a service registered without one) to 65535. */
export function portField(object: JsonObject, key: string, what: string): number {
  const value = object[key];
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new TypeError(`expected ${what}.${key} to be a port number, got ${describe(value)}`);
  }
  return value;
}

export function stringListField(object: JsonObject, key: string, what: string): string[] {
  return asArray(object[key], `${what}.${key}`).map((item, index) => {
    if (typeof item !== "string") {
      throw new TypeError(
        `expected ${what}.${key}[${index}] to be a string, got ${describe(item)}`,
      );
    }
    return item;
  });
}

export function asBoolean(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(`expected ${what} to be true or false, got ${describe(value)}`);
  }
  return value;
}

/** A string in an error is quoted up to this many characters: Consul's answers can be long. */
const QUOTE_MAX_CHARS = 40;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return JSON.stringify(value.slice(0, QUOTE_MAX_CHARS));
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}
