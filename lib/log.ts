/**
 * Logging: a small `Logger` interface every module takes as an option, backed by LogTape in the
 * program and by a capturing or silent logger in tests.
 *
 * LogTape stands in for the design card's `jsr:@std/log`, which cannot be fetched here.
 */
import {
  configure,
  getLogger,
  getStreamSink,
  type LogRecord,
  reset,
  type TextFormatter,
} from "@logtape/logtape";
import { AsyncLocalStorage } from "node:async_hooks";

/** Log levels, as LOG_LEVEL takes them (case-insensitive). */
export type LogLevel = "debug" | "info" | "warn" | "error";
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/**
 * The other LOG_LEVEL names the Go resec (logrus) accepted, mapped to the nearest level here: an
 * environment file written for it must keep starting the agent.
 */
export const LOG_LEVEL_ALIASES: ReadonlyMap<string, LogLevel> = new Map([
  ["warning", "warn"],
  // No level below debug here.
  ["trace", "debug"],
  // logrus's fatal and panic log as errors before they end the process; only errors are left.
  ["fatal", "error"],
  ["panic", "error"],
]);

/** Log line formats, as LOG_FORMAT takes them. */
export type LogFormat = "text" | "json";
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** Structured fields of a log line. Never put a secret here. */
export type LogFields = Record<string, unknown>;

/** What every module logs through. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger for a subsystem (`consul`, `redis`, `agent` …). */
  child(subsystem: string): Logger;
  /**
   * False when debug lines are dropped, so a caller can skip building costly ones (the agent's state
   * diff on every evaluation). Absent means true.
   */
  isDebugEnabled?(): boolean;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
  isDebugEnabled: () => false,
};

/** One captured log line. */
export interface CapturedLine {
  level: LogLevel;
  subsystem: string;
  message: string;
  fields: LogFields;
}

/** A logger that keeps every line in memory, for tests. */
export class CapturingLogger implements Logger {
  constructor(readonly lines: CapturedLine[] = [], readonly subsystem = "") {}
  debug(message: string, fields: LogFields = {}) {
    this.lines.push({ level: "debug", subsystem: this.subsystem, message, fields });
  }
  info(message: string, fields: LogFields = {}) {
    this.lines.push({ level: "info", subsystem: this.subsystem, message, fields });
  }
  warn(message: string, fields: LogFields = {}) {
    this.lines.push({ level: "warn", subsystem: this.subsystem, message, fields });
  }
  error(message: string, fields: LogFields = {}) {
    this.lines.push({ level: "error", subsystem: this.subsystem, message, fields });
  }
  child(subsystem: string): Logger {
    return new CapturingLogger(this.lines, subsystem);
  }
  /** Every line as text, for assertions such as "no secret appears". */
  text(): string {
    return this.lines.map((line) => `${line.message} ${JSON.stringify(line.fields)}`).join("\n");
  }
}

/** The log prefix: existing dashboards filter on it. */
export const LOG_CATEGORY = "resec";

/** Wraps a LogTape category as a `Logger`. */
export function logtapeLogger(category: readonly string[] = [LOG_CATEGORY]): Logger {
  const logger = getLogger([...category]);
  const emit = (level: LogLevel) => (message: string, fields: LogFields = {}) =>
    logger[level === "warn" ? "warning" : level](escapeBraces(message), fields);
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    child: (subsystem) => logtapeLogger([...category, subsystem]),
    isDebugEnabled: () => logger.isEnabledFor("debug"),
  };
}

export interface LoggingOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go (default stderr). */
  stream?: WritableStream<Uint8Array>;
}

/**
 * Configures LogTape for the whole process and returns the root logger. Only the program's entry point
 * calls this; dispose the result to flush and detach.
 */
export async function configureLogging(
  options: LoggingOptions,
): Promise<{ logger: Logger } & AsyncDisposable> {
  const formatter = options.format === "json" ? formatJsonLine : formatTextLine;
  await configure({
    reset: true,
    sinks: { out: getStreamSink(options.stream ?? Deno.stderr.writable, { formatter }) },
    loggers: [
      {
        category: [LOG_CATEGORY],
        lowestLevel: options.level === "warn" ? "warning" : options.level,
        sinks: ["out"],
      },
      // LogTape reports its own problems under this category; keep them quiet but visible on errors.
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["out"] },
    ],
    contextLocalStorage: new AsyncLocalStorage(),
  });
  return { logger: logtapeLogger(), [Symbol.asyncDispose]: () => reset() };
}

const LEVEL_LABEL: Record<string, string> = {
  trace: "TRACE",
  debug: "DEBUG",
  info: "INFO ",
  warning: "WARN ",
  error: "ERROR",
  fatal: "FATAL",
};

/** `2026-01-01T16:18:01.123Z INFO  resec.agent: lock acquired key=resec/.lock` */
export const formatTextLine: TextFormatter = (record: LogRecord) => {
  const fields = Object.entries(record.properties)
    .map(([key, value]) => `${key}=${formatFieldValue(value)}`)
    .join(" ");
  const message = renderMessage(record);
  return `${new Date(record.timestamp).toISOString()} ${
    LEVEL_LABEL[record.level] ?? record.level
  } ${record.category.join(".")}: ${message}${fields ? ` ${fields}` : ""}\n`;
};

/** One JSON object per line: time, level, logger, message and the fields. */
export const formatJsonLine: TextFormatter = (record: LogRecord) =>
  JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level === "warning" ? "warn" : record.level,
    logger: record.category.join("."),
    message: renderMessage(record),
    ...record.properties,
  }, errorReplacer) + "\n";

function renderMessage(record: LogRecord): string {
  return record.message.map((part) => typeof part === "string" ? part : String(part)).join("");
}

function formatFieldValue(value: unknown): string {
  if (typeof value === "string") {
    return /[\s"=]/.test(value) || value === "" ? JSON.stringify(value) : value;
  }
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value, errorReplacer) ?? String(value);
}

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message } : value;
}

/** LogTape treats `{name}` in a message as a placeholder; our messages are plain text. */
function escapeBraces(message: string): string {
  return message.replaceAll("{", "{{").replaceAll("}", "}}");
}
