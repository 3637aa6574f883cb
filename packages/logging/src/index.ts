export { type PinoRedactionOptions, type PinoRedactionSettings, redactPino } from './pino.js';
export { DEFAULT_SENSITIVE_KEYS, type ScrubOptions, scrubError, scrubText } from './scrub.js';
export { createRedactingStream, type RedactingStreamOptions, redactedDestination } from './stream.js';
export {
  redactWinston,
  type WinstonFormat,
  type WinstonInfo,
  type WinstonRedactionOptions,
} from './winston.js';
