import type {
  AwsProviderConfig,
  AzureProviderConfig,
  ProviderConfig,
  ReferenceContext,
  VaultProviderConfig,
} from '@secret-provider/config';
import { withTimeout } from '@secret-provider/core/adapter';
import { checkAws } from './aws-probes.js';
import { checkAzure } from './azure-probes.js';
import { failureLine, loadOrReport } from './local-commands.js';
import type { CliOptions } from './main.js';
import { type CheckLine, type Io, Reporter } from './output.js';
import { checkVault } from './vault-probes.js';

/**
 * `check`: every provider at once. Vault, Key Vault and Secrets Manager get their own
 * diagnostics (health, seal, standby, TLS expiry, token lookup, auth challenge; one request that
 * reads no value); the other providers are asked for their key names within the timeout, which
 * proves they can be read.
 */
export async function check(options: CliOptions, io: Io): Promise<number> {
  const reporter = new Reporter(io, { json: options.json });
  const loaded = await loadOrReport(options, io, reporter);
  if (loaded === undefined) return reporter.finish('check');
  for (const warning of loaded.warnings) {
    reporter.add({
      provider: 'config',
      check: 'shadowed-env',
      outcome: 'warn',
      detail: `${warning.path} ${warning.message}`,
    });
  }
  const context: ReferenceContext = { env: io.env, baseDir: loaded.baseDir, providers: loaded.providers };
  const report = (line: CheckLine) => reporter.add(line);
  try {
    await Promise.all(
      loaded.config.providers.map((entry: ProviderConfig, index) =>
        reporter.track(entry.name, async () => {
          const provider = loaded.providers.get(entry.name);
          if (provider === undefined) return;
          const path = `providers[${index}]`;
          try {
            if (entry.type === 'vault') {
              await checkVault(entry as VaultProviderConfig, context, path, options.timeoutMs, report);
            } else if (entry.type === 'azure') {
              await withTimeout(
                () => checkAzure(entry as AzureProviderConfig, provider, context, options.timeoutMs, report),
                options.timeoutMs * 3,
                { provider: entry.name },
              );
            } else if (entry.type === 'aws') {
              await checkAws(entry as AwsProviderConfig, provider, options.timeoutMs, report);
            } else {
              const started = performance.now();
              const names = await withTimeout(() => provider.keys(), options.timeoutMs, {
                provider: entry.name,
                operation: 'keys',
              });
              report({
                provider: entry.name,
                check: 'readable',
                outcome: 'ok',
                detail: `${names.length} key${names.length === 1 ? '' : 's'}`,
                latencyMs: performance.now() - started,
                data: { count: names.length },
              });
            }
          } catch (error) {
            report(failureLine(entry.name, 'check', error));
          }
        }),
      ),
    );
  } finally {
    await loaded.close();
  }
  return reporter.finish('check', { config: loaded.file });
}
