// One SecretClient per vault, created on first use (the SDK loads then), each with the answer
// policy in its pipeline; one DefaultAzureCredential shared by the vaults that need it.
import type { TokenCredential } from '@azure/core-auth';
import type { SecretClient, SecretClientOptions } from '@azure/keyvault-secrets';
import { keyVaultAnswerPolicy } from './answers.js';
import { ConnectionAgents } from './connection-agents.js';
import { requestTelemetryPolicy } from './request-telemetry.js';
import type { Vault } from './routing.js';
import { createDefaultCredential, loadSecretsModule } from './sdk.js';

/** Options of one SDK call: the caller's signal and the per-attempt timeout. */
export interface RequestOptions {
  abortSignal?: AbortSignal;
  requestOptions: { timeout: number };
}

export class VaultClients {
  readonly #provider: string;
  readonly #credential: TokenCredential | undefined;
  readonly #timeoutMs: number;
  readonly #clients = new Map<string, Promise<SecretClient>>();
  readonly #agents = new ConnectionAgents();
  #defaultCredential: Promise<TokenCredential> | undefined;

  constructor(provider: string, credential: TokenCredential | undefined, timeoutMs: number) {
    this.#provider = provider;
    this.#credential = credential;
    this.#timeoutMs = timeoutMs;
  }

  /** The client of `vault`; a failed creation is forgotten, so the next call tries again. */
  get(vault: Vault): Promise<SecretClient> {
    let client = this.#clients.get(vault.id);
    if (client === undefined) {
      client = this.#create(vault);
      this.#clients.set(vault.id, client);
      client.catch(() => {
        if (this.#clients.get(vault.id) === client) this.#clients.delete(vault.id);
      });
    }
    return client;
  }

  clear(): void {
    this.#clients.clear();
    this.#agents.destroy();
  }

  requestOptions(signal: AbortSignal | undefined): RequestOptions {
    return signal === undefined
      ? { requestOptions: { timeout: this.#timeoutMs } }
      : { abortSignal: signal, requestOptions: { timeout: this.#timeoutMs } };
  }

  async #create(vault: Vault): Promise<SecretClient> {
    if (vault.connection.client !== undefined) return vault.connection.client;
    const { SecretClient } = await loadSecretsModule(this.#provider);
    const credential =
      vault.connection.credential ?? this.#credential ?? (await this.#sharedDefaultCredential());
    const { tlsOptions, ...options }: SecretClientOptions = vault.connection.clientOptions ?? {};
    return new SecretClient(vault.url, credential, {
      ...options,
      additionalPolicies: [
        ...(options.additionalPolicies ?? []),
        { policy: keyVaultAnswerPolicy(vault.url), position: 'perCall' },
        // After the SDK's proxy policy, which it must see the work of.
        { policy: this.#agents.policy(tlsOptions), position: 'perRetry' },
        { policy: requestTelemetryPolicy(this.#provider), position: 'perRetry' },
      ],
    });
  }

  #sharedDefaultCredential(): Promise<TokenCredential> {
    this.#defaultCredential ??= createDefaultCredential(this.#provider).catch((error: unknown) => {
      this.#defaultCredential = undefined;
      throw error;
    });
    return this.#defaultCredential;
  }
}
