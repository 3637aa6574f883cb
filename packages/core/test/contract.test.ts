// The contract as adapter authors meet it through the base class: capabilities that say what an
// instance does, options refused rather than ignored, presence without errors, aborts that keep
// their reason, watches of closed providers, and the update stream.
import {
  CachedProvider,
  changeStream,
  hasKey,
  isSecretError,
  ProviderUnavailableError,
  type SecretError,
  type SecretProvider,
  type SetOptions,
} from '@secret-provider/core';
import {
  BaseProvider,
  type ErrorContext,
  type HookContext,
  type StoredSecret,
} from '@secret-provider/core/adapter';
import { MemoryProvider } from '@secret-provider/memory';
import { rejection, until } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';

/** A small adapter over a map, with hooks that count their calls and can be made slow. */
class MapBackend extends BaseProvider {
  readonly data = new Map<string, string>();
  readonly calls: string[] = [];
  slow = false;
  readonly contexts: ErrorContext[] = [];

  constructor(options: ConstructorParameters<typeof BaseProvider>[0] = { name: 'map' }) {
    super(options);
  }

  async #maybeWait(signal: AbortSignal | undefined): Promise<void> {
    if (!this.slow) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 5_000);
      signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new Error('backend request cancelled'));
      });
    });
  }

  protected override async readSecret(key: string, context: HookContext): Promise<StoredSecret | undefined> {
    this.calls.push(`read:${key}`);
    await this.#maybeWait(context.signal);
    const value = this.data.get(key);
    return value === undefined ? undefined : { value };
  }

  protected override async writeSecret(key: string, value: string, context: HookContext & SetOptions) {
    this.calls.push(`write:${key}`);
    await this.#maybeWait(context.signal);
    this.data.set(key, value);
  }

  protected override async deleteSecret(key: string, context: HookContext) {
    this.calls.push(`delete:${key}`);
    await this.#maybeWait(context.signal);
    return this.data.delete(key);
  }

  protected override async listKeys(context: HookContext) {
    await this.#maybeWait(context.signal);
    return [...this.data.keys()];
  }

  protected override mapError(error: unknown, context: ErrorContext): SecretError {
    this.contexts.push(context);
    return super.mapError(error, context);
  }
}

/** Presence by a map lookup, answered synchronously. */
class PresentBackend extends MapBackend {
  protected override hasSecret(key: string): boolean {
    this.calls.push(`has:${key}`);
    return this.data.has(key);
  }
}

/** Overrides only readSecret: the inherited presence hook would no longer tell the truth. */
class RenamingBackend extends PresentBackend {
  protected override async readSecret(key: string, context: HookContext) {
    return super.readSecret(`renamed/${key}`, context);
  }
}

const codeOf = (error: unknown) => (isSecretError(error) ? error.code : error);

describe('capabilities', () => {
  it('follow the hooks, and an instance can switch hook capabilities off but not on', async () => {
    expect(new MapBackend().capabilities).toMatchObject({
      write: true,
      delete: true,
      list: true,
      watch: false,
    });
    const readOnly = new MapBackend({
      name: 'ro',
      capabilities: { write: false, delete: false, list: false },
    });
    expect(readOnly.capabilities).toMatchObject({ write: false, delete: false, list: false });
    expect(codeOf(await rejection(readOnly.set('a', 'v')))).toBe('READ_ONLY');
    expect(codeOf(await rejection(readOnly.delete('a')))).toBe('UNSUPPORTED');
    expect(codeOf(await rejection(readOnly.keys()))).toBe('UNSUPPORTED');
    expect(readOnly.calls).toEqual([]);
    const noWatchHook = new MapBackend({ name: 'x', capabilities: { watch: true } });
    expect(noWatchHook.capabilities.watch).toBe(false);
  });

  it('say metadata and has are cheap only when a hook answers without the value', () => {
    expect(new MapBackend().capabilities).toMatchObject({ metadata: false, has: false });
    expect(new PresentBackend().capabilities.has).toBe(true);
    expect(new RenamingBackend().capabilities.has).toBe(false);
    expect(new MemoryProvider().capabilities).toMatchObject({ metadata: true, has: true });
  });

  it('refuse set options the provider does not honour, without calling the backend', async () => {
    const backend = new MapBackend();
    for (const option of [
      { ifVersion: '3' },
      { ifVersion: null },
      { expiresAt: new Date(Date.now() + 60_000) },
      { tags: { team: 'a' } },
      { contentType: 'text/plain' },
    ] satisfies SetOptions[]) {
      const error = await rejection(backend.set('k', 'never-stored-value', option));
      expect(codeOf(error)).toBe('UNSUPPORTED');
      expect(String((error as Error).message)).not.toContain('never-stored-value');
    }
    expect(backend.calls).toEqual([]);
    const declared = new MapBackend({ name: 'tagged', capabilities: { tags: true } });
    await declared.set('k', 'v', { tags: { team: 'a' } });
    expect(declared.calls).toEqual(['write:k']);
  });

  it('of memory are honoured: check-and-set, expiry, tags and content type', async () => {
    const memory = new MemoryProvider();
    await memory.set('k', 'v1', { ifVersion: null, tags: { team: 'a' }, contentType: 'text/plain' });
    const { version } = await memory.metadata('k');
    expect(codeOf(await rejection(memory.set('k', 'v2', { ifVersion: 'wrong' })))).toBe('CONFLICT');
    await memory.set('k', 'v2', { ifVersion: version });
    expect((await memory.get('k')).reveal()).toBe('v2');
    await memory.set('gone', 'v', { expiresAt: new Date(Date.now() - 1) });
    expect(codeOf(await rejection(memory.get('gone')))).toBe('NOT_FOUND');
    await memory.set('t', 'v', {
      tags: { team: 'a' },
      contentType: 'text/plain',
      expiresAt: new Date(Date.now() + 60_000),
    });
    expect(await memory.metadata('t')).toMatchObject({ tags: { team: 'a' }, contentType: 'text/plain' });
  });
});

describe('has', () => {
  it('answers synchronously from a trusted presence hook, without an error for a missing key', async () => {
    const backend = new PresentBackend();
    backend.data.set('a', 'v');
    expect(backend.has('a')).toBe(true);
    expect(backend.has('b')).toBe(false);
    expect(backend.calls).toEqual(['has:a', 'has:b']);
  });

  it('is derived from readSecret when a subclass overrides readSecret alone', async () => {
    const backend = new RenamingBackend();
    backend.data.set('renamed/a', 'v');
    expect(await backend.has('a')).toBe(true);
    expect(await backend.has('renamed/a')).toBe(false);
    expect(backend.calls.every((call) => call.startsWith('read:'))).toBe(true);
  });

  it('rejects outages, invalid keys and closed providers with their typed errors', async () => {
    class Down extends MapBackend {
      protected override async readSecret(): Promise<StoredSecret | undefined> {
        throw new ProviderUnavailableError({ provider: this.name });
      }
    }
    expect(codeOf(await rejection(Promise.resolve(new Down().has('a'))))).toBe('UNAVAILABLE');
    const backend = new PresentBackend();
    expect(codeOf(await rejection(Promise.resolve(backend.has(''))))).toBe('INVALID_KEY');
    await backend.close();
    expect(codeOf(await rejection(Promise.resolve(backend.has('a'))))).toBe('CLOSED');
  });

  it('is answered by a cache that knows, and derived by hasKey for providers without has', async () => {
    const memory = new MemoryProvider({ initial: { a: 'v' } });
    const cached = new CachedProvider(memory);
    await cached.get('a');
    memory.store.delete('a');
    expect(cached.has('a')).toBe(true); // still fresh in the cache, like get
    const plain: SecretProvider = {
      name: 'plain',
      capabilities: memory.capabilities,
      get: (key) => memory.get(key),
      metadata: (key) => memory.metadata(key),
      set: (key, value) => memory.set(key, value),
      delete: (key) => memory.delete(key),
      keys: () => memory.keys(),
      watch: (emitter) => memory.watch(emitter),
      close: () => memory.close(),
      [Symbol.asyncDispose]: () => memory.close(),
    };
    memory.store.set('b', 'v');
    expect(await hasKey(plain, 'b')).toBe(true);
    expect(await hasKey(plain, 'zz')).toBe(false);
  });
});

describe('aborts', () => {
  const reasons = () => [new Error('caller gave up'), 'a string reason', AbortSignal.timeout(1)];

  it('reject every operation with the signal reason, whatever it is, and mapError gets the signal', async () => {
    for (const make of reasons()) {
      const backend = new PresentBackend();
      backend.data.set('k', 'v');
      backend.slow = true;
      const signalOf = () => {
        if (make instanceof AbortSignal) return AbortSignal.timeout(20);
        const controller = new AbortController();
        setTimeout(() => controller.abort(make), 20);
        return controller.signal;
      };
      const calls = [
        (signal: AbortSignal) => backend.get('k', { signal }),
        (signal: AbortSignal) => backend.metadata('k', { signal }),
        (signal: AbortSignal) => backend.set('k', 'v2', { signal }),
        (signal: AbortSignal) => backend.delete('k', { signal }),
        (signal: AbortSignal) => backend.keys({ signal }),
      ];
      for (const call of calls) {
        const signal = signalOf();
        const error = await rejection(call(signal));
        expect(error).toBe(signal.reason);
      }
      const aborted = AbortSignal.abort(make instanceof AbortSignal ? undefined : make);
      expect(await rejection(Promise.resolve(backend.has('k', { signal: aborted })))).toBe(aborted.reason);
    }
  });

  it('pass the signal to mapError for failures of the backend', async () => {
    const backend = new MapBackend();
    class Failing extends MapBackend {
      protected override async listKeys(): Promise<string[]> {
        throw new Error('backend failed');
      }
    }
    const failing = new Failing();
    const signal = new AbortController().signal;
    expect(codeOf(await rejection(failing.keys({ signal })))).toBe('UNKNOWN');
    expect(failing.contexts).toEqual([{ operation: 'keys', key: undefined, signal }]);
    expect(backend.contexts).toEqual([]);
  });
});

describe('watch and changes', () => {
  it('on a closed provider returns a stopped handle whose ready rejects with CLOSED', async () => {
    const memory = new MemoryProvider();
    await memory.close();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const ignored = memory.watch(changeEmitter());
      const handle = memory.watch(changeEmitter());
      expect(handle.stopped).toBe(true);
      expect(codeOf(await rejection(handle.ready))).toBe('CLOSED');
      expect(ignored.stopped).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('changes() yields events with their type, errors do not end it, and it ends on close', async () => {
    const memory = new MemoryProvider({ initial: { a: '1' } });
    const seen: string[] = [];
    const changes = memory.changes();
    await changes.ready;
    const reading = (async () => {
      for await (const change of changes) {
        seen.push(change.type === 'rotated' ? `rotated:${change.keys.join(',')}` : `${change.type}`);
      }
      seen.push('ended');
    })();
    await memory.set('b', '2');
    await until(() => seen.includes('added'));
    await memory.set('a', '3');
    await until(() => seen.includes('rotated:a'));
    await memory.close();
    await reading;
    expect(seen.at(-1)).toBe('ended');
    expect(seen).toContain('added');
  });

  it('changeStream ends on abort and on break', async () => {
    const memory = new MemoryProvider();
    const controller = new AbortController();
    const stream = changeStream(memory, { signal: controller.signal });
    await stream.ready;
    const first = stream.next();
    await memory.set('a', '1');
    expect((await first).value).toMatchObject({ type: 'added', key: 'a' });
    controller.abort();
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    const broken = memory.changes();
    await broken.ready;
    void memory.set('z', '1');
    for await (const change of broken) {
      expect(change.type).toBe('added');
      break;
    }
    expect(await broken.next()).toEqual({ value: undefined, done: true });
    await memory.close();
  });
});

function changeEmitter() {
  return { on() {}, off() {}, emit() {}, all: new Map() } as never;
}
