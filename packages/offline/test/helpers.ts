import { randomBytes } from 'node:crypto';
import {
  AccessDeniedError,
  createEmitter,
  InvalidKeyError,
  ProviderUnavailableError,
  type Secret,
  type SecretError,
  type SecretEvents,
  type SecretProvider,
  SecretTimeoutError,
} from '@secret-provider/core';
import { WrappingProvider } from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { type OfflineFallbackOptions, OfflineFallbackProvider } from '@secret-provider/offline';

export type Failure = 'UNAVAILABLE' | 'TIMEOUT' | 'ACCESS_DENIED' | 'INVALID_KEY';

/**
 * A backend that can be switched to fail as an outage, a timeout, a refusal or a bad key,
 * the way adapters report them (typed errors whose cause quotes the value, as client errors do).
 */
export class SwitchableBackend extends WrappingProvider {
  failing: Failure | undefined;
  readonly memory: MemoryProvider;

  constructor(initial: Record<string, string>) {
    const memory = new MemoryProvider({ initial });
    super(memory, { name: 'backend' });
    this.memory = memory;
  }

  #failure(key: string): SecretError | undefined {
    const details = { provider: this.name, key, operation: 'get' as const };
    switch (this.failing) {
      case 'UNAVAILABLE':
        return new ProviderUnavailableError({
          ...details,
          cause: new Error('connect ECONNREFUSED 127.0.0.1'),
        });
      case 'TIMEOUT':
        return new SecretTimeoutError(details);
      case 'ACCESS_DENIED':
        return new AccessDeniedError(details);
      case 'INVALID_KEY':
        return new InvalidKeyError(details);
      default:
        return undefined;
    }
  }

  override async get(key: string): Promise<Secret<string>> {
    const failure = this.#failure(key);
    if (failure) throw failure;
    return super.get(key);
  }

  override async metadata(key: string) {
    const failure = this.#failure(key);
    if (failure) throw failure;
    return super.metadata(key);
  }
}

/** A random 32-byte key. */
export const newKey = (): Buffer => randomBytes(32);

/** A random value that no encoding of a name or another value contains by chance. */
export const newValue = (label: string): string => `${label}-${randomBytes(12).toString('hex')}`;

/** The wrapper and everything it reported. */
export function wrap(
  backend: SecretProvider,
  options: OfflineFallbackOptions,
): { provider: OfflineFallbackProvider; events: Array<{ type: keyof SecretEvents; event: unknown }> } {
  const provider = new OfflineFallbackProvider(backend, options);
  const events: Array<{ type: keyof SecretEvents; event: unknown }> = [];
  const emitter = createEmitter();
  emitter.on('*', (type, event) => events.push({ type, event }));
  provider.watch(emitter);
  return { provider, events };
}

/** Every spelling of `text` that would reveal it in a file: as is, hex, base64 and base64url. */
export function spellings(text: string): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  return [
    bytes,
    Buffer.from(bytes.toString('hex')),
    Buffer.from(bytes.toString('base64').replace(/=+$/, '')),
    Buffer.from(bytes.toString('base64url')),
  ];
}

/** Fails if any spelling of any of `texts` is in `bytes`; names neither. */
export function expectAbsentFrom(bytes: Buffer, texts: readonly string[]): void {
  texts.forEach((text, index) => {
    for (const spelled of spellings(text)) {
      if (bytes.includes(spelled)) throw new Error(`text #${index} (length ${text.length}) is in the file`);
    }
  });
}
