import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isSecretError } from '@secret-provider/core';
import { canI } from './can-i.js';
import { check } from './check.js';
import { explain, init, keys, printSchema, validate } from './local-commands.js';
import { EXIT, type Io } from './output.js';

export const USAGE = `Usage: secret-provider <command> [options]

Commands:
  validate              check the configuration without network access
  check                 reach, authenticate and time every provider
  can-i <action> KEY... ask the backends whether get|list|set|delete is allowed
  explain KEY           which provider serves KEY, and what the others answer
  keys                  the key names each provider holds (never values)
  init                  write a configuration template (--force to overwrite)
  schema                print the JSON Schema of the configuration file

Options:
  -c, --config <file>   configuration file (default: $SECRET_PROVIDER_CONFIG, else
                        secret-provider.config.json, .mjs or .js in the current directory)
      --json            print one JSON document on stdout
      --timeout <ms>    per-request timeout of check and can-i (default 5000)
      --force           init: overwrite an existing file
  -h, --help            this text

Exit codes: 0 all passed, 1 local or usage error, 2 remote error, 3 reachable but denied.
Secrets are never taken on the command line: reference them in the configuration.`;

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Flag names that ask for a secret; refused with a pointer to references instead of "unknown option". */
const SECRET_FLAG = /token|secret|password|passwd|credential|api-?key|bearer|auth/i;

/**
 * A Vault token, a JWT, a private key or a long random string: what a user pastes by mistake
 * where a key name belongs. Such an argument is refused (and not echoed).
 */
export function looksLikeSecret(value: string): boolean {
  return (
    /^(hv[sbr]|s|b|r)\.[A-Za-z0-9_-]{20,}$/.test(value) ||
    /^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value) ||
    value.includes('PRIVATE KEY') ||
    (/^[A-Za-z0-9+=_-]{40,}$/.test(value) && /\d/.test(value) && /[A-Z]/.test(value) && /[a-z]/.test(value))
  );
}

export interface CliOptions {
  readonly config: string | undefined;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly force: boolean;
}

function usageError(io: Io, message: string, json: boolean): number {
  if (json)
    io.stdout.write(
      `${JSON.stringify({ ok: false, exitCode: EXIT.local, error: { code: 'USAGE', message } }, null, 2)}\n`,
    );
  else io.stderr.write(`secret-provider: ${message}\n\n${USAGE}\n`);
  return EXIT.local;
}

/** The configuration file to use: the option, `SECRET_PROVIDER_CONFIG`, or the first default name present. */
export function configPath(options: CliOptions, io: Io): string {
  const given = options.config ?? io.env.SECRET_PROVIDER_CONFIG;
  if (given !== undefined && given !== '') return resolve(io.cwd, given);
  for (const name of [
    'secret-provider.config.json',
    'secret-provider.config.mjs',
    'secret-provider.config.js',
  ]) {
    const candidate = resolve(io.cwd, name);
    if (existsSync(candidate)) return candidate;
  }
  return resolve(io.cwd, 'secret-provider.config.json');
}

/** Runs the CLI; resolves with the exit code. Output goes to `io`; nothing is read from stdin. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const wantsJson = argv.includes('--json');
  for (const arg of argv) {
    const flag = /^--?([^=]+)/.exec(arg)?.[1];
    if (flag !== undefined && SECRET_FLAG.test(flag)) {
      return usageError(
        io,
        `--${flag} is refused: secrets are never taken on the command line; reference them in the configuration ({ "env": ... } or { "file": ... })`,
        wantsJson,
      );
    }
    if (looksLikeSecret(arg.replace(/^--?[^=]+=/, ''))) {
      return usageError(
        io,
        'an argument looks like a secret and was refused (it is not repeated here); pass key names only',
        wantsJson,
      );
    }
  }
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs quotes the offending argument; say which kind of problem it was, not the text.
    const code = (error as { code?: string }).code;
    return usageError(
      io,
      code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 'unknown option' : 'invalid arguments',
      wantsJson,
    );
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help === true || command === undefined || command === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return command === undefined && values.help !== true ? EXIT.local : EXIT.ok;
  }
  const timeoutMs = values.timeout === undefined ? 5_000 : Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    return usageError(io, '--timeout takes a positive number of milliseconds', wantsJson);
  const options: CliOptions = {
    config: values.config,
    json: values.json === true,
    timeoutMs,
    force: values.force === true,
  };
  try {
    switch (command) {
      case 'validate':
        return await validate(options, io);
      case 'check':
        return await check(options, io);
      case 'can-i': {
        const [action, ...keyNames] = rest;
        if (action !== 'get' && action !== 'list' && action !== 'set' && action !== 'delete') {
          return usageError(
            io,
            'can-i takes an action (get, list, set or delete) and at least one key',
            options.json,
          );
        }
        if (keyNames.length === 0)
          return usageError(io, `can-i ${action} needs at least one key (a prefix for list)`, options.json);
        return await canI(action, keyNames, options, io);
      }
      case 'explain': {
        if (rest.length !== 1) return usageError(io, 'explain takes one key', options.json);
        return await explain(rest[0] as string, options, io);
      }
      case 'keys':
        return await keys(options, io);
      case 'init':
        return await init(options, io);
      case 'schema':
        return printSchema(io);
      default:
        return usageError(io, 'unknown command', options.json);
    }
  } catch (error) {
    // Errors of this SDK name fields and keys, never values; anything else is reported by its kind only.
    const message = isSecretError(error)
      ? error.message
      : `unexpected failure (${(error as Error)?.name ?? 'error'})`;
    const code = isSecretError(error) ? error.code : 'UNKNOWN';
    if (options.json)
      io.stdout.write(
        `${JSON.stringify({ command, ok: false, exitCode: EXIT.local, error: { code, message } }, null, 2)}\n`,
      );
    else io.stderr.write(`secret-provider ${command}: ${message}\n`);
    return EXIT.local;
  }
}
