import { InvalidConfigError, type SecretProvider } from '@secret-provider/core';
import { type ChainMode, CompositeProvider, PROVIDER_NAME } from './composite-provider.js';
import { FailoverProvider, type FailoverProviderOptions } from './failover-provider.js';
import { LayeredProvider, type LayeredProviderOptions } from './layered-provider.js';

/**
 * Options of {@link ChainedProvider}: those of the kind `mode` picks ({@link LayeredProviderOptions}
 * or {@link FailoverProviderOptions}); options of the other kind are ignored.
 */
export interface ChainedProviderOptions extends LayeredProviderOptions, FailoverProviderOptions {
  /** `ordered`: a {@link LayeredProvider}; `failover`: a {@link FailoverProvider}. @default 'ordered' */
  readonly mode?: ChainMode | undefined;
  /**
   * Which failures move on to the next provider instead of rejecting.
   * @default false for `ordered`, {@link DEFAULT_FAILOVER_CODES} for `failover`
   */
  readonly failover?: LayeredProviderOptions['failover'];
}

/** A chain of either kind: `mode` tells which. */
export type ChainedProvider = LayeredProvider | FailoverProvider;

/** The constructor of {@link ChainedProvider}. */
export interface ChainedProviderConstructor {
  new (
    providers: readonly SecretProvider[],
    options: ChainedProviderOptions & { readonly mode: 'failover' },
  ): FailoverProvider;
  new (
    providers: readonly SecretProvider[],
    options?: ChainedProviderOptions & { readonly mode?: 'ordered' | undefined },
  ): LayeredProvider;
  new (providers: readonly SecretProvider[], options?: ChainedProviderOptions): ChainedProvider;
  /** True for every chain, of either kind. */
  [Symbol.hasInstance](value: unknown): value is ChainedProvider;
}

/**
 * Several providers as one, by `mode`: `new ChainedProvider([env, file, vault])` is a
 * {@link LayeredProvider} (ordered lookup: the first provider that has a key serves it), and
 * `new ChainedProvider([primary, secondary], { mode: 'failover' })` a {@link FailoverProvider}
 * (replicas: the first healthy one serves). Both are chains: `chain instanceof ChainedProvider`
 * holds for either, and `chain.mode` tells which. To extend a chain, extend one of the two.
 *
 * @example
 * ```ts
 * const secrets = new ChainedProvider([new EnvProvider({ prefix: 'APP_' }), files, vault]);
 * const url = await secrets.get('DATABASE_URL');
 * console.log(await secrets.explain('DATABASE_URL'));
 *
 * const replicated = new ChainedProvider([primaryVault, secondaryVault], { mode: 'failover', probeInterval: 10_000 });
 * ```
 */
export const ChainedProvider = Object.defineProperty(
  // A function, not a class: called with `new`, it returns the chain of the kind `mode` names.
  function ChainedProvider(providers: readonly SecretProvider[], options: ChainedProviderOptions = {}) {
    const mode = options.mode ?? 'ordered';
    if (mode === 'failover') return new FailoverProvider(providers, options);
    if (mode === 'ordered') return new LayeredProvider(providers, options);
    throw new InvalidConfigError(
      { provider: options.name ?? PROVIDER_NAME },
      'invalid configuration: mode must be "ordered" or "failover"',
    );
  },
  Symbol.hasInstance,
  { value: (value: unknown) => value instanceof CompositeProvider },
) as unknown as ChainedProviderConstructor;
