import type {
  AwsProviderConfig,
  AzureProviderConfig,
  ReferenceContext,
  VaultProviderConfig,
} from '@secret-provider/config';
import { awsCanI } from './aws-probes.js';
import { azureCanI } from './azure-probes.js';
import { failureLine, loadOrReport } from './local-commands.js';
import type { CliOptions } from './main.js';
import { type Io, Reporter } from './output.js';
import { vaultCapabilities, vaultRequirement } from './vault-probes.js';

type Action = 'get' | 'list' | 'set' | 'delete';

/**
 * `can-i ACTION KEY...`: for each Vault, one `sys/capabilities-self` request for every key;
 * for each Key Vault and Secrets Manager, the probes they allow (see {@link azureCanI},
 * {@link awsCanI}). Other providers have no
 * permission model to ask and are not listed. Each answer names the backend's action.
 */
export async function canI(
  action: Action,
  keys: readonly string[],
  options: CliOptions,
  io: Io,
): Promise<number> {
  const reporter = new Reporter(io, { json: options.json });
  const loaded = await loadOrReport(options, io, reporter);
  if (loaded === undefined) return reporter.finish('can-i', { action, keys });
  const context: ReferenceContext = { env: io.env, baseDir: loaded.baseDir, providers: loaded.providers };
  try {
    await Promise.all(
      loaded.config.providers.map((entry, index) =>
        reporter.track(entry.name, async () => {
          const provider = loaded.providers.get(entry.name);
          if (provider === undefined) return;
          try {
            if (entry.type === 'vault') {
              const vault = entry as VaultProviderConfig;
              const wanted = await Promise.all(keys.map((key) => vaultRequirement(vault, key, action)));
              const answer = await vaultCapabilities(
                vault,
                context,
                `providers[${index}]`,
                options.timeoutMs,
                [...new Set(wanted.map((w) => w.path))],
              );
              if (!('capabilities' in answer)) {
                reporter.add(answer);
                return;
              }
              keys.forEach((key, i) => {
                const { path, needs } = wanted[i] as (typeof wanted)[number];
                const has = answer.capabilities.get(path) ?? [];
                const allowed =
                  !has.includes('deny') && (has.includes('root') || needs.some((c) => has.includes(c)));
                reporter.add({
                  provider: entry.name,
                  check: `${action} ${key}`,
                  outcome: allowed ? 'ok' : 'denied',
                  detail: `${allowed ? 'allowed' : 'denied'}: ${needs.join(' or ')} on ${path} (token has ${has.join(', ') || 'nothing'})`,
                  hint: allowed
                    ? undefined
                    : has.includes('deny')
                      ? `a policy of the token denies "${path}" explicitly, which no grant overrides: remove that deny`
                      : `add to a policy of the token: path "${path}" { capabilities = ["${needs[0]}"] }`,
                  latencyMs: answer.latencyMs,
                  data: { path, needs, capabilities: has },
                });
              });
            } else if (entry.type === 'azure') {
              for (const key of keys)
                reporter.add(await azureCanI(entry as AzureProviderConfig, provider, action, key));
            } else if (entry.type === 'aws') {
              for (const key of keys)
                reporter.add(await awsCanI(entry as AwsProviderConfig, provider, action, key));
            }
          } catch (error) {
            reporter.add(failureLine(entry.name, 'can-i', error));
          }
        }),
      ),
    );
  } finally {
    await loaded.close();
  }
  return reporter.finish('can-i', { action, keys });
}
