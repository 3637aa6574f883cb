import { BaseProvider, type EmitFunction, type StoredSecret } from '@secret-provider/core/adapter';

/** A listable, writable provider with push events, like a chain of env, files and defaults. */
export class ConfigProvider extends BaseProvider {
  readonly data: Map<string, string | Uint8Array>;
  readonly #listeners = new Set<EmitFunction>();

  constructor(initial: Record<string, string | Uint8Array>, name = 'config') {
    super({ name });
    this.data = new Map(Object.entries(initial));
  }

  /** Changes a key out of band and tells watchers, as a backend's own events would. */
  change(key: string, value: string): void {
    const existed = this.data.has(key);
    this.data.set(key, value);
    for (const emit of this.#listeners) {
      if (existed)
        emit('rotated', { provider: this.name, keys: [key], changes: [{ key }], detectedAt: new Date() });
      else emit('added', { provider: this.name, key, detectedAt: new Date() });
    }
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    const value = this.data.get(key);
    return value === undefined ? undefined : { value };
  }

  protected override async writeSecret(key: string, value: string): Promise<void> {
    this.data.set(key, value);
  }

  protected override async listKeys(): Promise<string[]> {
    return [...this.data.keys()];
  }

  protected override async startWatch(emit: EmitFunction): Promise<() => void> {
    this.#listeners.add(emit);
    return () => this.#listeners.delete(emit);
  }
}
