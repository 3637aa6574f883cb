// Chain-specific test doubles. The shared helpers (until, record, expectNoLeak, rejection...)
// come from @secret-provider/testing.
import { InvalidKeyError, type SecretMetadata } from '@secret-provider/core';
import type { StoredSecret } from '@secret-provider/core/adapter';
import { MemoryProvider, type MemoryProviderOptions } from '@secret-provider/memory';

/**
 * A memory provider that fails on demand: while `failure` is set, reads, metadata and listing
 * throw what it makes. Counts the reads that reached it.
 */
export class FlakyProvider extends MemoryProvider {
  failure: (() => unknown) | undefined;
  reads = 0;
  metadataReads = 0;

  constructor(options: MemoryProviderOptions = {}) {
    super(options);
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    this.reads++;
    if (this.failure) throw this.failure();
    return super.readSecret(key);
  }

  protected override async readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
    this.metadataReads++;
    if (this.failure) throw this.failure();
    return super.readMetadata(key);
  }

  protected override async listKeys(): Promise<string[]> {
    if (this.failure) throw this.failure();
    return super.listKeys();
  }
}

/** A memory provider whose keys may not contain `_` (like Key Vault names). */
export class DashOnlyProvider extends MemoryProvider {
  protected override validateKey(key: unknown): string {
    const checked = super.validateKey(key);
    if (checked.includes('_')) {
      throw new InvalidKeyError(
        { provider: this.name, key: checked },
        'invalid key: only letters, digits and dashes',
      );
    }
    return checked;
  }
}
