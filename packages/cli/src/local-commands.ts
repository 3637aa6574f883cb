import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import {
  ConfigError,
  type ConfigIssue,
  describeIssue,
  type LoadedConfig,
  loadConfig,
  readConfig,
  validateConfig,
} from '@secret-provider/config';
import { isSecretError } from '@secret-provider/core';
import { type CliOptions, configPath } from './main.js';
import { type CheckLine, EXIT, type Io, Reporter } from './output.js';

const require = createRequire(import.meta.url);

/** Issues as report lines: errors are local failures, warnings warnings. */
function issueLines(issues: readonly ConfigIssue[], outcome: 'local' | 'warn'): CheckLine[] {
  return issues.map((issue) => ({
    provider: 'config',
    check: issue.code.toLowerCase().replaceAll('_', '-'),
    outcome,
    detail: describeIssue(issue),
    data: { path: issue.path, code: issue.code },
  }));
}

/** `validate`: schema, names, references, modes, shadowed variables. No network. */
export async function validate(options: CliOptions, io: Io): Promise<number> {
  const reporter = new Reporter(io, { json: options.json });
  const file = configPath(options, io);
  let report: Awaited<ReturnType<typeof validateConfig>>;
  try {
    const read = await readConfig(file);
    report = await validateConfig(read.value, { env: io.env, baseDir: read.baseDir, configFile: read.file });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of issueLines(error.issues, 'local')) reporter.add(line);
    return reporter.finish('validate', { config: file });
  }
  for (const line of issueLines(report.errors, 'local')) reporter.add(line);
  for (const line of issueLines(report.warnings, 'warn')) reporter.add(line);
  if (report.errors.length === 0) {
    reporter.add({
      provider: 'config',
      check: 'valid',
      outcome: 'ok',
      detail: `checked ${report.checked.join(', ')}`,
    });
  }
  return reporter.finish('validate', { config: file, checked: report.checked });
}

/** Loads the configuration, or reports why it cannot be loaded (and returns undefined). */
export async function loadOrReport(
  options: CliOptions,
  io: Io,
  reporter: Reporter,
): Promise<LoadedConfig | undefined> {
  const file = configPath(options, io);
  try {
    return await loadConfig(file, { env: io.env });
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const line of issueLines(error.issues, 'local')) reporter.add(line);
      return undefined;
    }
    throw error;
  }
}

/** An error as a report line: its code decides the outcome, its (value-free) message the detail. */
export function failureLine(provider: string, check: string, error: unknown, latencyMs?: number): CheckLine {
  const code = isSecretError(error) ? error.code : 'UNKNOWN';
  const outcome =
    code === 'ACCESS_DENIED'
      ? 'denied'
      : code === 'UNAVAILABLE' || code === 'TIMEOUT' || code === 'RATE_LIMITED'
        ? 'remote'
        : code === 'UNKNOWN'
          ? 'remote'
          : 'local';
  return {
    provider,
    check,
    outcome,
    detail: isSecretError(error) ? error.message : 'failed',
    data: { code },
    ...(latencyMs === undefined ? {} : { latencyMs }),
  };
}

/** `keys`: the names each provider holds, never a value. */
export async function keys(options: CliOptions, io: Io): Promise<number> {
  const reporter = new Reporter(io, { json: options.json });
  const loaded = await loadOrReport(options, io, reporter);
  if (loaded === undefined) return reporter.finish('keys');
  const listing: Record<string, string[]> = {};
  try {
    await Promise.all(
      [...loaded.providers].map(async ([name, provider]) => {
        const started = performance.now();
        try {
          const names = await reporter.track(name, () => provider.keys());
          listing[name] = names;
          reporter.add({
            provider: name,
            check: 'keys',
            outcome: 'ok',
            detail: names.length === 0 ? 'no keys' : names.join(', '),
            latencyMs: performance.now() - started,
            data: { count: names.length },
          });
        } catch (error) {
          reporter.add(failureLine(name, 'keys', error, performance.now() - started));
        }
      }),
    );
  } finally {
    await loaded.close();
  }
  return reporter.finish('keys', { keys: listing });
}

/** `explain KEY`: which provider serves a key and what each one answers (status and version only). */
export async function explain(key: string, options: CliOptions, io: Io): Promise<number> {
  const reporter = new Reporter(io, { json: options.json });
  const loaded = await loadOrReport(options, io, reporter);
  if (loaded === undefined) return reporter.finish('explain', { key });
  try {
    const routed = loaded.config.routing?.keys?.[key];
    const explanation = await loaded.chain.explain(key);
    for (const entry of explanation.entries) {
      const outcome =
        entry.status === 'failed' ? (entry.error?.code === 'ACCESS_DENIED' ? 'denied' : 'remote') : 'ok';
      reporter.add({
        provider: entry.provider,
        check: `#${entry.position + 1}`,
        outcome,
        detail: `${entry.status}${entry.version === undefined ? '' : `, version ${entry.version}`}${entry.error === undefined ? '' : ` (${entry.error.code})`}`,
        data: {
          status: entry.status,
          ...(entry.version === undefined ? {} : { version: entry.version }),
          ...(entry.updatedAt === undefined ? {} : { updatedAt: entry.updatedAt.toISOString() }),
          ...(entry.error === undefined ? {} : { error: entry.error }),
        },
      });
    }
    const servedBy = routed ?? explanation.servedBy;
    reporter.say(
      servedBy === undefined
        ? `${key}: no provider has it`
        : `${key}: served by ${servedBy}${routed === undefined ? '' : ' (routed)'}`,
    );
    const code =
      servedBy === undefined && !reporter.lines.some((l) => l.outcome !== 'ok') ? EXIT.local : undefined;
    return reporter.finish('explain', { key, servedBy: servedBy ?? null, mode: explanation.mode }, code);
  } finally {
    await loaded.close();
  }
}

/** The starting point `init` writes: environment first, a secret volume, then Vault. */
export const TEMPLATE = {
  $schema: './node_modules/@secret-provider/config/schema.json',
  providers: [
    { name: 'env', type: 'env', prefix: 'APP_', stripPrefix: true },
    { name: 'files', type: 'file', path: '/run/secrets', format: 'directory' },
    {
      name: 'vault',
      type: 'vault',
      endpoint: 'https://vault.example.internal:8200',
      auth: { method: 'token', token: { env: 'VAULT_TOKEN' } },
      mounts: { secret: { version: 2 } },
    },
  ],
  cache: { ttl: 300_000, max: 500 },
};

/** `init`: writes the template (mode 0600); an existing file stays unless `--force`. */
export async function init(options: CliOptions, io: Io): Promise<number> {
  const file = configPath(options, io);
  const reporter = new Reporter(io, { json: options.json });
  let handle: import('node:fs/promises').FileHandle;
  try {
    // 'wx' fails on an existing file atomically, so a file created meanwhile is not overwritten either.
    handle = await open(file, options.force ? 'w' : 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    reporter.add({
      provider: 'config',
      check: 'init',
      outcome: 'local',
      detail:
        code === 'EEXIST'
          ? `${file} exists; not overwritten`
          : `${file} cannot be written (${code ?? 'error'})`,
      hint: code === 'EEXIST' ? 'pass --force to overwrite it' : undefined,
    });
    return reporter.finish('init', { config: file });
  }
  try {
    await handle.writeFile(`${JSON.stringify(TEMPLATE, null, 2)}\n`);
    await handle.chmod(0o600);
  } finally {
    await handle.close();
  }
  reporter.add({ provider: 'config', check: 'init', outcome: 'ok', detail: `wrote ${file}` });
  return reporter.finish('init', { config: file });
}

/** `schema`: the JSON Schema, as published by `@secret-provider/config/schema.json`. */
export function printSchema(io: Io): number {
  io.stdout.write(readFileSync(require.resolve('@secret-provider/config/schema.json'), 'utf8'));
  return EXIT.ok;
}
