import {
  createEmitter,
  isSecretError,
  ProviderUnavailableError,
  type SecretEvents,
} from '@secret-provider/core';
import {
  BaseProvider,
  type HookContext,
  type StoredSecret,
  type VersionSnapshot,
} from '@secret-provider/core/adapter';
import { describe, expect, it } from 'vitest';

/** An adapter that only knows how to read and to list versions: watching comes from the base. */
class PolledBackend extends BaseProvider {
  data = new Map<string, { value: string; version: number }>();
  snapshotFailures = 0;
  snapshots = 0;
  closedCount = 0;

  constructor(pollInterval = 20) {
    super({ name: 'polled', pollInterval, pollJitter: 0 });
  }

  put(key: string, value: string) {
    this.data.set(key, { value, version: (this.data.get(key)?.version ?? 0) + 1 });
  }

  protected override async readSecret(key: string): Promise<StoredSecret | undefined> {
    const entry = this.data.get(key);
    return entry && { value: entry.value, metadata: { version: String(entry.version) } };
  }

  protected override async readSnapshot(_context: HookContext): Promise<VersionSnapshot> {
    this.snapshots++;
    if (this.snapshotFailures > 0) {
      this.snapshotFailures--;
      throw new ProviderUnavailableError({ provider: this.name, operation: 'watch' });
    }
    return new Map([...this.data].map(([key, entry]) => [key, String(entry.version)]));
  }

  protected override async onClose(): Promise<void> {
    this.closedCount++;
  }
}

const until = async (check: () => boolean, ms = 2_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

describe('BaseProvider', () => {
  it('derives capabilities from the hooks an adapter wrote', () => {
    expect(new PolledBackend().capabilities).toEqual({
      write: false,
      delete: false,
      list: false,
      watch: true,
      // No readMetadata hook: metadata() reads the value, so the flag says it does not avoid that.
      metadata: false,
      versions: false,
      has: false,
      checkAndSet: false,
      expiry: false,
      tags: false,
      contentType: false,
    });
  });

  it('watches by polling snapshots and emits added, rotated and removed once each', async () => {
    const provider = new PolledBackend();
    provider.put('a', 'one');
    const events: Array<[keyof SecretEvents, unknown]> = [];
    const emitter = createEmitter();
    emitter.on('*', (type, event) => events.push([type, event]));
    const handle = provider.watch(emitter);
    await handle.ready;
    provider.put('b', 'two');
    provider.put('a', 'one-changed');
    await until(() => events.length >= 2);
    provider.data.delete('b');
    await until(() => events.length >= 3);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(events.map(([type]) => type)).toEqual(['added', 'rotated', 'removed']);
    expect(events[1]?.[1]).toMatchObject({
      keys: ['a'],
      changes: [{ key: 'a', oldVersion: '1', newVersion: '2' }],
    });
    expect(JSON.stringify(events)).not.toContain('one-changed');
    await handle.stop();
    await provider.close();
  });

  it('reports a failing poll as an error event and recovers', async () => {
    const provider = new PolledBackend();
    const events: Array<keyof SecretEvents> = [];
    const emitter = createEmitter();
    emitter.on('*', (type) => events.push(type));
    const handle = provider.watch(emitter);
    await handle.ready;
    provider.snapshotFailures = 1;
    provider.put('x', 'value-x');
    await until(() => events.includes('added'));
    expect(events[0]).toBe('error');
    await handle.stop();
    await provider.close();
  });

  it('reports a baseline it cannot read as an error event and goes on polling: the first snapshot read is the baseline', async () => {
    const provider = new PolledBackend();
    provider.put('a', 'one');
    provider.snapshotFailures = 2;
    const events: Array<keyof SecretEvents> = [];
    const emitter = createEmitter();
    emitter.on('*', (type) => events.push(type));
    const handle = provider.watch(emitter);
    await handle.ready;
    expect(events).toEqual(['error']);
    // One failed poll more, then a baseline: `a` was there before it, so it is not reported.
    await until(() => provider.snapshots >= 3);
    expect(events).toEqual(['error', 'error']);
    provider.put('b', 'two');
    await until(() => events.includes('added'));
    expect(events).toEqual(['error', 'error', 'added']);
    expect(handle.stopped).toBe(false);
    await handle.stop();
    await provider.close();
  });

  it('stops polling when the last watcher stops, and closes once', async () => {
    const provider = new PolledBackend();
    const seen: string[] = [];
    const emitter = createEmitter();
    emitter.on('*', (type) => seen.push(String(type)));
    const first = provider.watch(emitter);
    const second = provider.watch(createEmitter());
    await Promise.all([first.ready, second.ready]);
    await first.stop();
    provider.put('still-watched', 'v');
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(seen).toEqual([]); // the first emitter is detached
    await second.stop();
    await Promise.all([provider.close(), provider.close()]);
    expect(provider.closedCount).toBe(1);
    await expect(provider.get('a')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('keeps a throwing listener from breaking the watch', async () => {
    const provider = new PolledBackend();
    const emitter = createEmitter();
    let calls = 0;
    emitter.on('added', () => {
      calls++;
      throw new Error('listener bug');
    });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    const handle = provider.watch(emitter);
    await handle.ready;
    provider.put('k1', 'v');
    await until(() => calls === 1);
    provider.put('k2', 'v');
    await until(() => calls === 2);
    await handle.stop();
    await provider.close();
    process.off('warning', onWarning);
    expect(warnings.some((m) => m.includes('listener'))).toBe(true);
  });

  it('rejects writes and deletes of a read-only adapter with typed errors', async () => {
    const provider = new PolledBackend();
    await expect(provider.set('k', 'v')).rejects.toSatisfy((e: unknown) => isSecretError(e, 'READ_ONLY'));
    await expect(provider.delete('k')).rejects.toSatisfy((e: unknown) => isSecretError(e, 'UNSUPPORTED'));
    await expect(provider.keys()).rejects.toSatisfy((e: unknown) => isSecretError(e, 'UNSUPPORTED'));
    await provider.close();
  });

  it('maps unknown adapter errors to UNKNOWN with a sanitized cause', async () => {
    class Throwing extends BaseProvider {
      constructor() {
        super({ name: 'throwing' });
      }
      protected override async readSecret(): Promise<StoredSecret | undefined> {
        throw new TypeError('driver said: password=leaky-value-123');
      }
    }
    const provider = new Throwing();
    const error = await provider.get('k').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNKNOWN', provider: 'throwing', key: 'k', operation: 'get' });
    const { inspect } = await import('node:util');
    expect(inspect(error, { depth: Infinity })).not.toContain('leaky-value-123');
    await provider.close();
  });
});
