import type { Redactor } from '@secret-provider/core';
import { redactDeep } from '@secret-provider/core/redaction';
import { errorsInRecords, type ScrubOptions, scrubText } from './scrub.js';

/** winston's (triple-beam's) key of the finished log line. */
const MESSAGE = Symbol.for('message');

/** Options of {@link redactWinston}. */
export interface WinstonRedactionOptions {
  /** Scrub errors in log entries with {@link scrubError} too. @default true */
  readonly scrubErrors?: boolean | undefined;
  /** Options for that scrubbing (the redactor is passed for you). */
  readonly scrub?: Omit<ScrubOptions, 'redactor'> | undefined;
}

/** A winston/logform format (structurally typed: winston is optional). */
export interface WinstonFormat {
  readonly options: Record<string, unknown>;
  transform(info: WinstonInfo, options?: unknown): WinstonInfo | false;
}

/** A winston log entry. */
export interface WinstonInfo {
  [key: string | symbol]: unknown;
  level: string;
  message: unknown;
}

/**
 * A winston format that masks every value `redactor` knows in a log entry: its message, its
 * metadata (deeply, errors included), and the finished line that formats such as `json()` or
 * `printf()` put under `Symbol.for('message')`. Put it last in `format.combine(...)` so that it
 * also covers what the other formats produce; it returns a redacted copy, leaving the caller's
 * objects untouched.
 *
 * @example
 * ```ts
 * const logger = winston.createLogger({
 *   format: winston.format.combine(winston.format.errors({ stack: true }), winston.format.json(), redactWinston(redactor)),
 *   transports: [new winston.transports.Console()],
 * });
 * ```
 */
export function redactWinston(redactor: Redactor, options: WinstonRedactionOptions = {}): WinstonFormat {
  const scrub: ScrubOptions | undefined =
    options.scrubErrors === false ? undefined : { ...options.scrub, redactor };
  const errors = scrub === undefined ? undefined : errorsInRecords(scrub);
  return {
    options: {},
    transform(info) {
      let entry: WinstonInfo = info;
      // winston passes an error logged on its own as the entry itself: the walk scrubs it whole.
      if (errors !== undefined) entry = redactDeep(info, errors) as WinstonInfo;
      const redacted = redactor.redact(entry);
      const line = entry[MESSAGE];
      if (typeof line !== 'string') return redacted;
      // A JSON line is masked only where values appear JSON-escaped, so it stays valid JSON.
      let finished = looksLikeJson(line) ? redactor.redactJson(line) : redactor.redact(line);
      // Errors scrubbed above were already serialized into the line by an earlier format:
      // mask credential shapes there too (using this format first as well avoids that).
      if (scrub !== undefined && entry !== info)
        finished = scrubText(finished, { ...scrub, redactor: undefined });
      if (finished !== redacted[MESSAGE]) redacted[MESSAGE] = finished;
      return redacted;
    },
  };
}

function looksLikeJson(line: string): boolean {
  const first = line.charCodeAt(0);
  return (first === 0x7b || first === 0x5b) && line.length > 1;
}
