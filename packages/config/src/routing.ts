import {
  type GetOptions,
  hasKey,
  type OperationOptions,
  type Secret,
  type SecretMetadata,
  type SecretProvider,
  type SecretValue,
  type SetOptions,
} from '@secret-provider/core';
import { WrappingProvider } from '@secret-provider/core/adapter';

/** Routes of a configuration, resolved to providers. */
export interface Routes {
  readonly keys: ReadonlyMap<string, SecretProvider>;
  /** Longest prefix first. */
  readonly prefixes: ReadonlyArray<readonly [string, SecretProvider]>;
}

/**
 * The chain, except that routed keys (exact names, or the longest matching prefix) go to their
 * one provider only: a routed key missing there is NOT_FOUND, never served by another provider.
 * Listing and watching are the chain's (the routed providers are members of it).
 */
export class RoutedProvider extends WrappingProvider {
  readonly #routes: Routes;

  constructor(chain: SecretProvider, routes: Routes) {
    super(chain, { name: chain.name, ownsProvider: true });
    this.#routes = routes;
  }

  /** The provider a key is routed to, if any. */
  route(key: string): SecretProvider | undefined {
    return (
      this.#routes.keys.get(key) ?? this.#routes.prefixes.find(([prefix]) => key.startsWith(prefix))?.[1]
    );
  }

  override async get(key: string, options?: GetOptions): Promise<Secret<string>> {
    this.assertOpen('get');
    return (this.route(key) ?? this.provider).get(key, options);
  }

  override has(key: string, options?: OperationOptions): boolean | Promise<boolean> {
    const routed = this.closed ? undefined : this.route(key);
    return routed === undefined ? super.has(key, options) : hasKey(routed, key, options);
  }

  override async metadata(key: string, options?: OperationOptions): Promise<SecretMetadata> {
    this.assertOpen('metadata');
    return (this.route(key) ?? this.provider).metadata(key, options);
  }

  override async set(key: string, value: string | Secret<SecretValue>, options?: SetOptions): Promise<void> {
    this.assertOpen('set');
    return (this.route(key) ?? this.provider).set(key, value, options);
  }

  override async delete(key: string, options?: OperationOptions): Promise<void> {
    this.assertOpen('delete');
    return (this.route(key) ?? this.provider).delete(key, options);
  }
}
