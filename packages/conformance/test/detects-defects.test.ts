// The suite is only worth something if it fails defective adapters. Each case here is the
// correct StoreProvider with one defect planted, run through the whole suite outside the runner;
// the case passes when the test meant to catch that defect fails, by name.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { conformanceTests, GROUP_NAMES, type GroupName } from '@secret-provider/conformance';
import {
  InvalidKeyError,
  ProviderUnavailableError,
  Secret,
  SecretError,
  type SecretEventEmitter,
  type SecretMetadata,
  type SecretValue,
  type SetOptions,
  UnsupportedOperationError,
  type WatchHandle,
  type WatchOptions,
} from '@secret-provider/core';
import type {
  EmitFunction,
  ErrorContext,
  HookContext,
  StoredSecret,
  VersionSnapshot,
} from '@secret-provider/core/adapter';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSuite, type SuiteOutcome } from './fixtures/run-suite.js';
import { FaultyStore, StoreProvider, type StoreProviderOptions } from './fixtures/store-provider.js';

interface Subject {
  readonly provider: StoreProvider;
  readonly store: FaultyStore;
  readonly backend: {
    set(key: string, value: string): Promise<void>;
    delete(key: string): Promise<void>;
    read(key: string): Promise<string | undefined>;
  };
}

type Make = (options: StoreProviderOptions) => StoreProvider;

/** Runs the whole suite, with every harness hook, on providers made by `make`. */
function suiteOn(
  make: Make,
  options: Partial<StoreProviderOptions> = {},
  withHooks = true,
): Promise<SuiteOutcome> {
  return runSuite<Subject>({
    eventTimeoutMs: 1_000,
    quietPeriodMs: 100,
    settleMs: 300,
    concurrency: 50,
    create: () => {
      const store = new FaultyStore();
      return {
        provider: make({ store, ...options }),
        store,
        backend: {
          set: async (key, value) => void store.put(key, value),
          delete: async (key) => void store.remove(key),
          read: async (key) => store.peek(key)?.value,
        },
      };
    },
    ...(withHooks
      ? {
          failNextCall: ({ store }: Subject, error: Error) => store.failNext(error),
          makeUnreachable: ({ store }: Subject) => {
            store.down = true;
            return () => {
              store.down = false;
            };
          },
        }
      : {}),
  });
}

const correct: Make = (options) => new StoreProvider(options);
const reveal = (value: string | Secret<SecretValue>) =>
  String(Secret.isSecret(value) ? value.reveal() : value);

// Resources the leaking defects leave behind, released after their run so this process can exit.
const leftovers: Array<() => void> = [];
let server: Server;
let port = 0;
const accepted = new Set<Socket>();

beforeAll(async () => {
  server = createServer((socket) => {
    accepted.add(socket);
    socket.on('close', () => accepted.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  for (const release of leftovers.splice(0)) release();
  for (const socket of accepted) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

/** One defect: how to plant it, and the test (by title) that must fail because of it. */
interface Defect {
  readonly name: string;
  readonly make: Make;
  readonly options?: Partial<StoreProviderOptions>;
  readonly caughtBy: string;
}

const title = (group: GroupName, start: string): string => {
  const found = conformanceTests(group).find((t) => t.startsWith(start));
  if (found === undefined) throw new Error(`no test of group ${group} starts with "${start}"`);
  return found;
};

const DEFECTS: readonly Defect[] = [
  // Caught before the suite was split into groups.
  {
    name: 'a missing key resolves as an empty value instead of rejecting',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async readSecret(key: string, context: HookContext & { version?: string }) {
          return (await super.readSecret(key, context)) ?? { value: '' };
        }
      })(o),
    caughtBy: title('read', 'rejects a missing key with NOT_FOUND'),
  },
  {
    name: 'the error of a bad key quotes the value being written',
    make: (o) =>
      new (class extends StoreProvider {
        override async set(key: string, value: string | Secret<SecretValue>, options?: SetOptions) {
          if (key === '')
            throw new InvalidKeyError({ provider: this.name }, `empty key for ${reveal(value)}`);
          return super.set(key, value, options);
        }
      })(o),
    caughtBy: title('read', 'rejects bad keys'),
  },
  {
    name: 'concurrent writes of distinct keys lose each other (read-modify-write of a batch)',
    make: (o) => {
      let pending = new Map<string, string>();
      return new (class extends StoreProvider {
        protected override async writeSecret(key: string, value: string) {
          const batch = new Map(pending);
          batch.set(key, value);
          await new Promise((resolve) => setTimeout(resolve, 1));
          pending = batch;
          for (const k of (await this.store.client.keys()).filter((k) => !batch.has(k))) this.store.remove(k);
          for (const [k, v] of batch) this.store.put(k, v);
        }
      })(o);
    },
    caughtBy: title('write', 'keeps every one of many concurrent writes'),
  },
  {
    name: 'a stopped watch keeps reporting',
    make: (o) =>
      new (class extends StoreProvider {
        override watch(emitter: SecretEventEmitter, _options?: WatchOptions): WatchHandle {
          const handle = super.watch(emitter);
          return {
            ready: handle.ready,
            stopped: true,
            stop: async () => {},
            [Symbol.asyncDispose]: async () => {},
          };
        }
      })(o),
    options: { watchBy: 'push' },
    caughtBy: title('watch', 'stops reporting after stop()'),
  },
  {
    name: 'reads and writes still work after close()',
    make: (o) =>
      new (class extends StoreProvider {
        override close() {
          return Promise.resolve();
        }
      })(o),
    caughtBy: title('lifecycle', 'closes idempotently'),
  },
  {
    name: 'keys() returns the names with the backend prefix',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async listKeys() {
          return (await super.listKeys()).map((key) => `app/${key}`);
        }
      })(o),
    caughtBy: title('list', 'lists seeded keys once each'),
  },
  {
    name: 'watch never reports a removal',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async startWatch(emit: EmitFunction) {
          return super.startWatch((type, event) => (type === 'removed' ? undefined : emit(type, event)));
        }
      })(o),
    options: { watchBy: 'push' },
    caughtBy: title('watch', 'reports out-of-band additions, rotations and removals'),
  },
  {
    name: 'a rotated event carries the new value',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async startWatch(emit: EmitFunction) {
          return this.store.subscribe((change) => {
            const value = this.store.peek(change.key)?.value;
            const detectedAt = new Date();
            if (change.type === 'rotated')
              emit('rotated', {
                provider: this.name,
                keys: [change.key],
                changes: [{ key: change.key, newVersion: value }],
                detectedAt,
              });
            else
              emit(change.type, {
                provider: this.name,
                key: change.key,
                version: change.version,
                detectedAt,
              });
          });
        }
      })(o),
    options: { watchBy: 'push' },
    caughtBy: title('watch', 'reports out-of-band additions, rotations and removals'),
  },
  // Let through by the suite before it was split into groups.
  {
    name: 'watch reports a rotation on every poll although nothing changed',
    make: (o) => {
      let polls = 0;
      return new (class extends StoreProvider {
        protected override async readSnapshot(): Promise<VersionSnapshot> {
          polls++;
          return new Map(
            [...(await super.readSnapshot())].map(([key, version]) => [key, `${version}.${polls}`]),
          );
        }
      })(o);
    },
    caughtBy: title('watch', 'stays quiet while nothing changes'),
  },
  {
    name: 'the error of a failed backend command quotes the value (the client message copied)',
    make: (o) =>
      new (class extends StoreProvider {
        protected override mapError(error: unknown, context: ErrorContext) {
          if (
            error instanceof Error &&
            !(error instanceof SecretError) &&
            (error as { code?: unknown }).code === undefined
          )
            return new SecretError('UNAVAILABLE', `backend failed: ${error.message}`, {
              provider: this.name,
              key: context.key,
            });
          return super.mapError(error, context);
        }
      })(o),
    caughtBy: title('failure', 'reports a failed backend write'),
  },
  {
    name: 'the error of a refused option quotes the value',
    make: (o) =>
      new (class extends StoreProvider {
        override async set(key: string, value: string | Secret<SecretValue>, options: SetOptions = {}) {
          if (options.expiresAt !== undefined)
            throw new UnsupportedOperationError(
              { provider: this.name, key, operation: 'set' },
              `cannot store ${reveal(value)} with an expiry`,
            );
          return super.set(key, value, options);
        }
      })(o),
    options: { capabilities: { expiry: false } },
    caughtBy: title('expiry', 'stores expiresAt and reports it in metadata'),
  },
  {
    name: 'metadata() returns the value as the version',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async readMetadata(key: string): Promise<Omit<SecretMetadata, 'key'> | undefined> {
          const entry = await this.store.client.read(key);
          return entry === undefined ? undefined : { version: entry.value };
        }
      })(o),
    caughtBy: title('read', 'reads metadata without the value'),
  },
  {
    name: 'close() leaves a timer running',
    make: (o) => {
      const timer = setInterval(() => {}, 60_000);
      leftovers.push(() => clearInterval(timer));
      return new StoreProvider(o);
    },
    caughtBy: title('leaks', 'close() releases every timer, socket and handle'),
  },
  {
    name: 'close() leaves a socket open',
    make: (o) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      leftovers.push(() => socket.destroy());
      return new StoreProvider(o);
    },
    caughtBy: title('leaks', 'close() releases every timer, socket and handle'),
  },
  {
    name: 'ifVersion is declared but silently ignored (an unconditional overwrite)',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async writeSecret(key: string, value: string, context: HookContext & SetOptions) {
          await this.store.client.write(key, value, { ...context, ifVersion: undefined });
        }
      })(o),
    caughtBy: title('checkAndSet', 'writes with ifVersion only over that version'),
  },
  {
    name: 'ifVersion is not declared and silently ignored',
    make: (o) =>
      new (class extends StoreProvider {
        override async set(key: string, value: string | Secret<SecretValue>, options: SetOptions = {}) {
          const { ifVersion: _ignored, ...rest } = options;
          return super.set(key, value, rest);
        }
      })(o),
    options: { capabilities: { checkAndSet: false } },
    caughtBy: title('checkAndSet', 'writes with ifVersion only over that version'),
  },
  {
    name: 'expiresAt is declared but silently ignored',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async writeSecret(key: string, value: string, context: HookContext & SetOptions) {
          await this.store.client.write(key, value, { ...context, expiresAt: undefined });
        }
      })(o),
    caughtBy: title('expiry', 'stores expiresAt and reports it in metadata'),
  },
  {
    name: 'a backend outage is reported as NOT_FOUND',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async readSecret(
          key: string,
          context: HookContext & { version?: string },
        ): Promise<StoredSecret | undefined> {
          return super.readSecret(key, context).catch(() => undefined);
        }
      })(o),
    caughtBy: title('failure', 'reports an unreachable backend as UNAVAILABLE or TIMEOUT'),
  },
  // Further failure paths the groups cover.
  {
    name: 'a failed poll is taken for an empty backend (every key reported removed)',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async readSnapshot(): Promise<VersionSnapshot> {
          return super.readSnapshot().catch(() => new Map());
        }
      })(o),
    caughtBy: title('failure', 'reports an outage to watchers as an error, not as removals'),
  },
  {
    name: 'a push watch that cannot start during an outage swallows the failure and stays silent for good',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async startWatch(emit: EmitFunction) {
          if (!this.store.down) return super.startWatch(emit);
          emit('error', {
            provider: this.name,
            error: new ProviderUnavailableError({ provider: this.name, operation: 'watch' }),
            detectedAt: new Date(),
          });
          return () => {};
        }
      })(o),
    options: { watchBy: 'push' },
    caughtBy: title('failure', 'a watch started while the backend is unreachable'),
  },
  {
    name: 'has() answers false when the backend fails',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async hasSecret(key: string) {
          return (await this.store.client.read(key).catch(() => undefined)) !== undefined;
        }
      })(o),
    caughtBy: title('failure', 'reports a failed backend read as a typed failure'),
  },
  {
    name: 'tags are declared but silently dropped',
    make: (o) =>
      new (class extends StoreProvider {
        protected override async writeSecret(key: string, value: string, context: HookContext & SetOptions) {
          await this.store.client.write(key, value, { ...context, tags: undefined });
        }
      })(o),
    caughtBy: title('write', 'stores tags and reports them in metadata'),
  },
];

describe('the conformance suite', () => {
  it('has a unique title for every test, across groups', () => {
    const titles = GROUP_NAMES.flatMap((group) => conformanceTests(group));
    expect(new Set(titles).size).toBe(titles.length);
  });

  for (const [label, options] of [
    ['polled', { watchBy: 'poll' }],
    ['pushed', { watchBy: 'push' }],
    ['cached', { watchBy: 'push', cache: true }],
    [
      'read-only, nothing declared',
      {
        capabilities: {
          write: false,
          delete: false,
          versions: false,
          checkAndSet: false,
          expiry: false,
          tags: false,
          contentType: false,
        },
      },
    ],
  ] as const) {
    it(`passes a correct provider (${label}), running every group`, async () => {
      const outcome = await suiteOn(correct, options);
      expect(Object.fromEntries(outcome.failed)).toEqual({});
      expect(outcome.skipped).toEqual([]);
      expect(outcome.report.notRun).toEqual([]);
      expect(outcome.report.groups.map((g) => g.group)).toEqual([...GROUP_NAMES]);
      expect(outcome.passed.length).toBe(GROUP_NAMES.flatMap((g) => conformanceTests(g)).length);
    });
  }

  it('reports the tests that need a missing hook as not run, by name, never as passed', async () => {
    const outcome = await suiteOn(correct, {}, false);
    const needHooks = [...conformanceTests('failure')];
    expect(outcome.report.notRun.map((t) => t.test)).toEqual(needHooks);
    expect(outcome.report.notRun.every((t) => t.reason.startsWith('needs the harness hook'))).toBe(true);
    expect(outcome.skipped).toEqual(outcome.report.notRun.map((t) => `${t.test} [not run: ${t.reason}]`));
    for (const test of needHooks) expect(outcome.passed).not.toContain(test);
    expect(Object.fromEntries(outcome.failed)).toEqual({});
  });

  it('refuses to switch off a group it does not know', async () => {
    await expect(
      runSuite({
        create: () => ({ provider: new StoreProvider({ store: new FaultyStore() }) }),
        skip: { wacth: 'typo' } as never,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });

  for (const defect of DEFECTS) {
    it(`fails a provider whose defect is: ${defect.name}`, async () => {
      const outcome = await suiteOn(defect.make, defect.options);
      try {
        expect([...outcome.failed.keys()], JSON.stringify(Object.fromEntries(outcome.failed))).toContain(
          defect.caughtBy,
        );
      } finally {
        for (const release of leftovers.splice(0)) release();
      }
      // The defect is caught by what it breaks, not by a suite that fails everything.
      expect(outcome.passed.length).toBeGreaterThan(outcome.failed.size);
    });
  }
});
