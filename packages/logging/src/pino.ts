import type { Redactor } from '@secret-provider/core';
import { redactDeep } from '@secret-provider/core/redaction';
import { errorsInRecords, type ScrubOptions } from './scrub.js';

/** Options of {@link redactPino}. */
export interface PinoRedactionOptions {
  /**
   * Scrub errors found in log records (top level and a few levels down) with
   * {@link scrubError} before pino serializes them: sensitive property names, credential
   * shapes, attached sockets and requests. @default true
   */
  readonly scrubErrors?: boolean | undefined;
  /** Options for that scrubbing (the redactor is passed for you). */
  readonly scrub?: Omit<ScrubOptions, 'redactor'> | undefined;
  /** A `hooks.streamWrite` of your own, run before the redaction. */
  readonly streamWrite?: ((line: string) => string) | undefined;
  /** A `formatters.log` of your own, run before the error scrubbing. */
  readonly log?: ((record: Record<string, unknown>) => Record<string, unknown>) | undefined;
}

/** The part of pino's options {@link redactPino} sets (structurally typed: pino is optional). */
export interface PinoRedactionSettings {
  readonly hooks: { streamWrite(line: string): string };
  readonly formatters?: { log(record: Record<string, unknown>): Record<string, unknown> };
}

/**
 * Pino options that mask every value `redactor` knows in every line pino writes: message,
 * bindings of child loggers, serialized errors and any other field, including values learned
 * after the child logger was created. The masking runs on the finished JSON line
 * (`hooks.streamWrite`), so nothing a serializer or formatter adds escapes it, and the line
 * stays valid JSON. Errors in records are also scrubbed of credentials the redactor does not
 * know (see {@link PinoRedactionOptions.scrubErrors}).
 *
 * Pino's own `redact` option (paths to censor) is complementary: it hides fields by name,
 * this hides values wherever they are.
 *
 * @example
 * ```ts
 * const logger = pino({ level: 'info', ...redactPino(redactor) });
 * ```
 */
export function redactPino(redactor: Redactor, options: PinoRedactionOptions = {}): PinoRedactionSettings {
  const own = options.streamWrite;
  const streamWrite =
    own === undefined
      ? (line: string) => redactor.redactJson(line)
      : (line: string) => redactor.redactJson(own(line));
  if (options.scrubErrors === false) {
    return options.log === undefined
      ? { hooks: { streamWrite } }
      : { hooks: { streamWrite }, formatters: { log: options.log } };
  }
  const errors = errorsInRecords({ ...options.scrub, redactor } satisfies ScrubOptions);
  const ownLog = options.log;
  return {
    hooks: { streamWrite },
    formatters: {
      log(record) {
        const base = ownLog === undefined ? record : ownLog(record);
        return redactDeep(base, errors) as Record<string, unknown>;
      },
    },
  };
}
