import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ChainedProvider } from '@secret-provider/chained';
import { CachedProvider, type SecretProvider } from '@secret-provider/core';
import { ConfigError, importOptional } from './errors.js';
import { createProvider } from './factories.js';
import { RoutedProvider, type Routes } from './routing.js';
import type { ConfigIssue } from './schema.js';
import type { ProviderConfig, SecretProviderConfig } from './types.js';
import { validateConfig } from './validate.js';

/** Options of {@link loadConfig} and {@link readConfig}. */
export interface LoadConfigOptions {
  /** Environment for references and vendor variables. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Directory relative paths resolve from, for a config given as an object. @default process.cwd() */
  readonly baseDir?: string | undefined;
  /**
   * Where `telemetry` spans go instead of the global tracer provider (an OpenTelemetry
   * `TracerProvider`; typed loosely so that this package does not need the API's types).
   */
  readonly tracerProvider?: { getTracer(name: string): unknown } | undefined;
  /** Where `telemetry` metrics go instead of the global meter provider (a `MeterProvider`). */
  readonly meterProvider?: { getMeter(name: string): unknown } | undefined;
}

/** A configuration read from a file, before it is checked. */
export interface ReadConfig {
  readonly value: unknown;
  /** Absolute path of the file. */
  readonly file: string;
  readonly baseDir: string;
}

/** A loaded configuration: the chain, its providers by name, and what validation warned about. */
export interface LoadedConfig {
  /** What applications read from: the chain, behind the cache and routing when configured. */
  readonly provider: SecretProvider;
  /** The ChainedProvider over the declared providers, in order. */
  readonly chain: ChainedProvider;
  readonly providers: ReadonlyMap<string, SecretProvider>;
  readonly config: SecretProviderConfig;
  /** The file it was read from, when it came from one. */
  readonly file: string | undefined;
  /** Directory relative paths were resolved from. */
  readonly baseDir: string;
  readonly warnings: readonly ConfigIssue[];
  /** Closes the chain, its providers and the credential sources created for them; stops telemetry. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Reads a configuration file: `.json`, or `.mjs`/`.js`/`.ts` whose default export is the
 * configuration (`export default defineConfig({...})`; `.ts` needs a runtime that loads
 * TypeScript). Parse failures are {@link ConfigError}s (`PARSE`) that give a position, never
 * the file's text.
 */
export async function readConfig(file: string): Promise<ReadConfig> {
  const path = resolve(file);
  const baseDir = dirname(path);
  const extension = extname(path);
  if (extension === '.json') {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new ConfigError([{ path: '', code: 'UNREADABLE', message: `${path} cannot be read (${code})` }]);
    }
    try {
      return { value: JSON.parse(text) as unknown, file: path, baseDir };
    } catch (error) {
      // V8's message quotes the text near the error, which may be a secret pasted by mistake.
      const position = /position (\d+)/.exec((error as Error).message)?.[1];
      throw new ConfigError([
        {
          path: '',
          code: 'PARSE',
          message: `${path} is not valid JSON${position === undefined ? '' : ` (at character ${position})`}`,
        },
      ]);
    }
  }
  if (extension === '.mjs' || extension === '.js' || extension === '.ts' || extension === '.mts') {
    try {
      const module = (await import(pathToFileURL(path).href)) as { default?: unknown };
      return { value: module.default, file: path, baseDir };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const hint =
        code === 'ERR_UNKNOWN_FILE_EXTENSION'
          ? ': this Node.js cannot load TypeScript; use .mjs or a TypeScript loader'
          : '';
      throw new ConfigError([
        { path: '', code: 'UNREADABLE', message: `${path} could not be imported${hint}` },
      ]);
    }
  }
  throw new ConfigError([
    { path: '', code: 'UNREADABLE', message: `${path}: a configuration is .json, .mjs, .js or .ts` },
  ]);
}

/**
 * Validates a configuration (a file path or the object) and builds its chain: each provider's
 * adapter is imported when the configuration declares one, references are resolved, vendor
 * variables fill unset fields. Invalid configurations reject with a {@link ConfigError} listing
 * every issue by field path.
 *
 * @example
 * ```ts
 * await using secrets = await loadConfig('secret-provider.config.json');
 * const url = await secrets.provider.get('DATABASE_URL');
 * ```
 */
export async function loadConfig(
  source: string | SecretProviderConfig,
  options: LoadConfigOptions = {},
): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  const read =
    typeof source === 'string'
      ? await readConfig(source)
      : { value: source as unknown, file: undefined, baseDir: resolve(options.baseDir ?? process.cwd()) };
  const report = await validateConfig(read.value, { env, baseDir: read.baseDir, configFile: read.file });
  if (report.errors.length > 0) throw new ConfigError(report.errors, { source: read.file });
  const config = read.value as SecretProviderConfig;

  const providers = new Map<string, SecretProvider>();
  const adopted: SecretProvider[] = [];
  const built: SecretProvider[] = [];
  let stopTelemetry: (() => void) | undefined;
  const closeAll = async () => {
    for (const provider of [...built].reverse()) await provider.close().catch(() => undefined);
    for (const provider of adopted) await provider.close().catch(() => undefined);
    stopTelemetry?.();
    stopTelemetry = undefined;
  };
  try {
    // Before the providers, so that reads made while building (provider references) are seen too.
    if (config.telemetry?.enabled === true) stopTelemetry = await startTelemetry(config, options);
    for (const [index, entry] of config.providers.entries()) {
      const provider = await createProvider(entry as ProviderConfig, {
        env,
        baseDir: read.baseDir,
        providers,
        path: `providers[${index}]`,
        config,
        adopt: (p) => adopted.push(p),
      });
      built.push(provider);
      providers.set(entry.name, provider);
    }
  } catch (error) {
    await closeAll();
    throw error;
  }

  const chain = new ChainedProvider(built, { mode: config.mode ?? 'ordered', name: 'config' });
  let provider: SecretProvider = chain;
  if (config.routing !== undefined) {
    const byName = (name: string) => providers.get(name) as SecretProvider;
    const routes: Routes = {
      keys: new Map(Object.entries(config.routing.keys ?? {}).map(([key, name]) => [key, byName(name)])),
      prefixes: Object.entries(config.routing.prefixes ?? {})
        .sort(([a], [b]) => b.length - a.length)
        .map(([prefix, name]) => [prefix, byName(name)] as const),
    };
    provider = new RoutedProvider(provider, routes);
  }
  if (config.cache !== undefined && config.cache !== false) {
    provider = new CachedProvider(provider, {
      ...(config.cache.ttl === undefined ? {} : { ttl: config.cache.ttl }),
      ...(config.cache.max === undefined ? {} : { max: config.cache.max }),
      ...(config.cache.staleWhileRevalidate === undefined
        ? {}
        : { staleWhileRevalidate: config.cache.staleWhileRevalidate }),
    });
  }
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      // The chain owns its providers by default; close() is idempotent, so closing them again is harmless.
      await provider.close();
      await closeAll();
    })();
    return closing;
  };
  return {
    provider,
    chain,
    providers,
    config,
    file: read.file,
    baseDir: read.baseDir,
    warnings: report.warnings,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * One instrumentation per process and destination. It records every provider of the process, so
 * configurations loaded with the same settings share it (a second one would record everything
 * twice); it stops when the last of them closes.
 */
const instrumentations: {
  readonly traces: boolean;
  readonly metrics: boolean;
  readonly tracerProvider: unknown;
  readonly meterProvider: unknown;
  started: Promise<() => void>;
  users: number;
}[] = [];

/** Starts `@secret-provider/opentelemetry` for `config.telemetry`; returns the function that stops it. */
async function startTelemetry(config: SecretProviderConfig, options: LoadConfigOptions): Promise<() => void> {
  const wanted = {
    traces: config.telemetry?.traces !== false,
    metrics: config.telemetry?.metrics !== false,
    tracerProvider: options.tracerProvider,
    meterProvider: options.meterProvider,
  };
  let shared = instrumentations.find(
    (i) =>
      i.traces === wanted.traces &&
      i.metrics === wanted.metrics &&
      i.tracerProvider === wanted.tracerProvider &&
      i.meterProvider === wanted.meterProvider,
  );
  if (shared === undefined) {
    const entry = { ...wanted, started: instrument(wanted), users: 0 };
    shared = entry;
    instrumentations.push(entry);
    entry.started.catch(() => forget(entry));
  }
  const entry = shared;
  const stop = await entry.started;
  entry.users++;
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    entry.users--;
    if (entry.users > 0) return;
    forget(entry);
    stop();
  };
}

function forget(entry: (typeof instrumentations)[number]): void {
  const index = instrumentations.indexOf(entry);
  if (index >= 0) instrumentations.splice(index, 1);
}

async function instrument(wanted: {
  traces: boolean;
  metrics: boolean;
  tracerProvider: unknown;
  meterProvider: unknown;
}): Promise<() => void> {
  const module = await importOptional(
    '@secret-provider/opentelemetry',
    () => import('@secret-provider/opentelemetry'),
    'telemetry.enabled',
    'needs @secret-provider/opentelemetry (and @opentelemetry/api): install them next to @secret-provider/config',
  );
  type Options = import('@secret-provider/opentelemetry').SecretProviderInstrumentationOptions;
  return module.instrumentSecretProvider({
    traces: wanted.traces,
    metrics: wanted.metrics,
    ...(wanted.tracerProvider === undefined
      ? {}
      : { tracerProvider: wanted.tracerProvider as Options['tracerProvider'] }),
    ...(wanted.meterProvider === undefined
      ? {}
      : { meterProvider: wanted.meterProvider as Options['meterProvider'] }),
  });
}
