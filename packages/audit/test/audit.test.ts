import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AuditRecord,
  type AuditSink,
  AuditUnavailableError,
  channelSink,
  createAuditor,
  fileSink,
  loggerSink,
} from '@secret-provider/audit';
import { ChainedProvider } from '@secret-provider/chained';
import { CachedProvider, isSecretError } from '@secret-provider/core';
import { ManualClock } from '@secret-provider/core/adapter';
import { VaultDouble } from '@secret-provider/doubles/vault';
import { MemoryProvider } from '@secret-provider/memory';
import { expectNoLeak, rejection, tempDir } from '@secret-provider/testing';
import { VaultProvider } from '@secret-provider/vault';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, memorySink } from './fixtures.js';

const PASSWORD = 'audit-pass-Qz7mW2rT';
const FAULT_TEXT = 'backend-echo-Lp4vX9ns';

const defer = cleanupAfterEach();

describe('audit records', () => {
  it('records reads, writes, deletes, errors and rotations of attached providers only', async () => {
    const sink = memorySink();
    const auditor = createAuditor({ sinks: [sink] });
    const audited = new MemoryProvider({ name: 'audited', initial: { A: PASSWORD } });
    const other = new MemoryProvider({ name: 'other', initial: { A: PASSWORD } });
    auditor.attach(audited);
    const changes = audited.changes();
    const firstChange = changes.next();
    await audited.get('A');
    await other.get('A');
    await audited.set('B', PASSWORD);
    await audited.delete('B');
    await rejection(audited.get('MISSING'));
    await audited.set('A', `${PASSWORD}-2`);
    await firstChange;
    await auditor.close();
    await audited.close();
    await other.close();
    const ops = sink.records.filter((r) => r.kind === 'operation');
    expect(ops.every((r) => r.provider === 'audited')).toBe(true);
    expect(ops.map((r) => [r.operation, r.outcome, r.errorCode])).toEqual(
      expect.arrayContaining([
        ['get', 'ok', undefined],
        ['set', 'ok', undefined],
        ['delete', 'ok', undefined],
        ['get', 'error', 'NOT_FOUND'],
      ]),
    );
    expect(ops.find((r) => r.operation === 'get')?.version).toBeDefined();
    expect(sink.records).toContainEqual(
      expect.objectContaining({ kind: 'change', operation: 'rotation', keys: ['A'], provider: 'audited' }),
    );
    expectNoLeak([sink.records], [PASSWORD], { encodings: true });
  });

  it('aggregates cache hits per key per window on the clock, flushing at window end and on close', async () => {
    const clock = new ManualClock();
    const sink = memorySink();
    const auditor = createAuditor({ sinks: [sink], clock, cacheHits: { mode: 'aggregate', windowMs: 1000 } });
    const provider = new MemoryProvider({
      name: 'cached',
      initial: { A: PASSWORD, B: PASSWORD },
      cache: { ttl: 60_000 },
      clock,
    });
    auditor.attach(provider);
    for (let i = 0; i < 4; i++) await provider.get('A');
    for (let i = 0; i < 3; i++) await provider.get('B');
    await clock.advance(999);
    await new Promise((r) => setImmediate(r));
    expect(sink.records.filter((r) => r.kind === 'cache-hits')).toEqual([]);
    await clock.advance(1);
    await new Promise((r) => setImmediate(r));
    const first = sink.records.filter((r) => r.kind === 'cache-hits');
    expect(first).toEqual([
      expect.objectContaining({
        key: 'A',
        servedFrom: 'cache',
        count: 3,
        windowMs: 1000,
        provider: 'cached',
      }),
      expect.objectContaining({
        key: 'B',
        servedFrom: 'cache',
        count: 2,
        windowMs: 1000,
        provider: 'cached',
      }),
    ]);
    // The next window holds only its own hits, and close flushes it before the window ends.
    await provider.get('A');
    await clock.advance(10);
    await auditor.close();
    await provider.close();
    const hits = sink.records.filter((r) => r.kind === 'cache-hits');
    expect(hits.slice(2)).toEqual([expect.objectContaining({ key: 'A', count: 1 })]);
    expect(hits[2]?.time).toBe(new Date(clock.now()).toISOString());
    expect(sink.records.filter((r) => r.kind === 'operation' && r.operation === 'get')).toHaveLength(2);
  });

  it('counts the hits of a CachedProvider in front of a provider, and of both caches once each', async () => {
    const clock = new ManualClock();
    const sink = memorySink();
    const auditor = createAuditor({ sinks: [sink], clock, cacheHits: { mode: 'aggregate', windowMs: 1000 } });
    const inner = new MemoryProvider({
      name: 'inner',
      initial: { A: PASSWORD },
      cache: { ttl: 60_000 },
      clock,
    });
    const front = new CachedProvider(inner, { name: 'front', ttl: 60_000 });
    auditor.attach(front);
    await front.get('A'); // a miss at both caches: one backend read
    for (let i = 0; i < 3; i++) await front.get('A'); // hits at the front
    await inner.get('A'); // a hit at the inner cache, read past the front
    await clock.advance(1000);
    await auditor.close();
    await front.close();
    const hits = sink.records.filter((r) => r.kind === 'cache-hits');
    expect(hits).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ provider: 'front', key: 'A', count: 3 }),
        expect.objectContaining({ provider: 'inner', key: 'A', count: 1 }),
      ]),
    );
    expect(hits).toHaveLength(2);
    const reads = sink.records.filter((r) => r.kind === 'operation' && r.operation === 'get');
    expect(reads).toEqual([expect.objectContaining({ provider: 'inner', servedFrom: 'backend' })]);
  });

  it('samples cache hits at a rate the record carries, and refuses a rate or window out of range', async () => {
    const clock = new ManualClock();
    const sink = memorySink();
    // Every fourth draw falls under the rate.
    const draws = [0.9, 0.6, 0.3, 0.1];
    let n = 0;
    const auditor = createAuditor({
      sinks: [sink],
      clock,
      cacheHits: { mode: 'sample', rate: 0.25 },
      random: () => draws[n++ % draws.length] as number,
    });
    const provider = new MemoryProvider({ name: 'sampled', initial: { A: PASSWORD }, cache: true, clock });
    auditor.attach(provider);
    for (let i = 0; i < 9; i++) await provider.get('A');
    await auditor.close();
    await provider.close();
    const sampled = sink.records.filter((r) => r.servedFrom === 'cache');
    expect(sampled).toEqual([
      expect.objectContaining({
        kind: 'operation',
        operation: 'get',
        key: 'A',
        outcome: 'ok',
        sampleRate: 0.25,
      }),
      expect.objectContaining({
        kind: 'operation',
        operation: 'get',
        key: 'A',
        outcome: 'ok',
        sampleRate: 0.25,
      }),
    ]);
    expect(sink.records.filter((r) => r.kind === 'cache-hits')).toEqual([]);
    expect(sink.records.filter((r) => r.servedFrom === 'backend')).toHaveLength(1);
    for (const cacheHits of [
      { mode: 'sample', rate: 0 },
      { mode: 'sample', rate: 1.5 },
      { mode: 'aggregate', windowMs: 0 },
    ] as const)
      expect(() => createAuditor({ sinks: [sink], cacheHits })).toThrow(/invalid configuration/);
  });

  it('writes NDJSON to a 0600 file, refuses a looser one, and feeds logger and channel sinks', async () => {
    const tmp = tempDir();
    defer(tmp.remove);
    const path = join(tmp.dir, 'audit.ndjson');
    const logged: [object, string | undefined][] = [];
    const published: unknown[] = [];
    const listener = (m: unknown) => published.push(m);
    subscribe('test:audit', listener);
    defer(() => unsubscribe('test:audit', listener));
    const auditor = createAuditor({
      sinks: [
        await fileSink(path),
        loggerSink({ info: (o, m) => logged.push([o, m]) }),
        channelSink('test:audit'),
      ],
    });
    const provider = new MemoryProvider({ name: 'files', initial: { A: PASSWORD } });
    auditor.attach(provider);
    await provider.get('A');
    await auditor.close();
    await provider.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const lines = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);
    expect(lines).toEqual([expect.objectContaining({ operation: 'get', key: 'A', outcome: 'ok' })]);
    expect(logged).toEqual([[lines[0], 'secret access']]);
    expect(published).toEqual([lines[0]]);
    const loose = join(tmp.dir, 'loose.ndjson');
    writeFileSync(loose, '');
    chmodSync(loose, 0o644);
    expect(isSecretError(await rejection(fileSink(loose)), 'INVALID_CONFIG')).toBe(true);
  });

  it('counts what a full queue drops; fail-open by default, fail-closed withholds what was not recorded', async () => {
    const slow: AuditSink = { write: () => new Promise((r) => setTimeout(r, 5)) };
    const open = createAuditor({ sinks: [slow], maxQueue: 1 });
    const provider = new MemoryProvider({ name: 'open', initial: { A: PASSWORD } });
    const wrappedOpen = open.wrap(provider);
    for (let i = 0; i < 3; i++) await wrappedOpen.get('A');
    expect(open.stats().dropped).toBe(2);
    await open.close();
    await wrappedOpen.close();

    const closedAuditor = createAuditor({ sinks: [slow], maxQueue: 1, mode: 'fail-closed' });
    const backend = new MemoryProvider({ name: 'closed', initial: { A: PASSWORD } });
    let calls = 0;
    const get = backend.get.bind(backend);
    backend.get = ((...args: Parameters<typeof get>) => {
      calls++;
      return get(...args);
    }) as typeof get;
    const wrapped = closedAuditor.wrap(backend);
    // Three reads at once: one record fits the queue, two cannot be taken, and those reads reject
    // (the values read are disposed, not returned).
    const settled = await Promise.allSettled([wrapped.get('A'), wrapped.get('A'), wrapped.get('A')]);
    expect(calls).toBe(3);
    const served = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(served.map((secret) => secret.reveal())).toEqual([PASSWORD]);
    expect(refused).toHaveLength(2);
    for (const error of refused) {
      expect(error).toBeInstanceOf(AuditUnavailableError);
      expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    }
    expectNoLeak(refused, [PASSWORD], { encodings: true });
    expect(closedAuditor.stats().dropped).toBe(2);
    await closedAuditor.close();
    await wrapped.close();

    const broken = createAuditor({
      sinks: [{ write: () => Promise.reject(new Error('disk full')) }],
      mode: 'fail-closed',
    });
    const third = broken.wrap(new MemoryProvider({ name: 'broken', initial: { A: PASSWORD } }));
    // The read's own record cannot be written: the read rejects; the next is refused before the backend.
    expect(await rejection(third.get('A'))).toBeInstanceOf(AuditUnavailableError);
    expect(broken.stats().sinkFailures).toBe(1);
    expect(await rejection(third.get('A'))).toBeInstanceOf(AuditUnavailableError);
    expect(await rejection(third.getMany?.(['A']) ?? Promise.resolve())).toBeInstanceOf(
      AuditUnavailableError,
    );
    await broken.close();
    await third.close();
  });
});

describe('fail-closed recovery and chains', () => {
  const pumped = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };

  it('refuses operations while a sink fails, and admits them again once it takes records', async () => {
    let broken = false;
    const taken: AuditRecord[] = [];
    const sink: AuditSink = {
      write: (record) => {
        if (broken) return Promise.reject(new Error('disk full'));
        taken.push(record);
        return Promise.resolve();
      },
    };
    const auditor = createAuditor({ sinks: [sink], mode: 'fail-closed' });
    const backend = new MemoryProvider({ name: 'recovering', initial: { A: PASSWORD } });
    let calls = 0;
    const get = backend.get.bind(backend);
    backend.get = ((...args: Parameters<typeof get>) => {
      calls++;
      return get(...args);
    }) as typeof get;
    const wrapped = auditor.wrap(backend);
    defer(() => wrapped.close());
    await wrapped.get('A');
    // A fail-closed read answers once its record is written, not before.
    expect(taken).toEqual([expect.objectContaining({ operation: 'get', key: 'A', outcome: 'ok' })]);
    expect((await wrapped.getMany?.(['A']))?.get('A')?.reveal()).toBe(PASSWORD);
    expect(taken).toHaveLength(2);
    taken.splice(0);
    broken = true;
    // Admitted (the failure is not known yet) and read, but its record is lost: it rejects.
    expect(await rejection(wrapped.get('A'))).toBeInstanceOf(AuditUnavailableError);
    await pumped();
    expect(auditor.stats()).toEqual(expect.objectContaining({ failing: true, sinkFailures: 1 }));
    expect(await rejection(wrapped.get('A'))).toBeInstanceOf(AuditUnavailableError);
    await pumped();
    expect(await rejection(wrapped.get('A'))).toBeInstanceOf(AuditUnavailableError);
    expect(calls).toBe(2);
    broken = false;
    // The refusal waiting in the queue is written: the sink works, the next operation runs.
    await pumped();
    expect(auditor.stats().failing).toBe(false);
    expect((await wrapped.get('A')).reveal()).toBe(PASSWORD);
    expect(calls).toBe(3);
    await auditor.close();
    expect(taken.map((r) => [r.outcome, r.refused])).toEqual([
      ['error', true],
      ['ok', undefined],
    ]);
    expect(taken[0]).toEqual(
      expect.objectContaining({
        provider: 'recovering',
        operation: 'get',
        key: 'A',
        errorCode: 'UNAVAILABLE',
      }),
    );
    expectNoLeak([taken], [PASSWORD], { encodings: true });
  });

  it('admits operations again once a full queue drains', async () => {
    const slow: AuditSink = { write: () => new Promise((r) => setTimeout(r, 5)) };
    const auditor = createAuditor({ sinks: [slow], maxQueue: 1, mode: 'fail-closed' });
    const wrapped = auditor.wrap(new MemoryProvider({ name: 'draining', initial: { A: PASSWORD } }));
    defer(() => wrapped.close());
    const [first, second] = await Promise.allSettled([wrapped.get('A'), wrapped.get('A')]);
    expect(first?.status).toBe('fulfilled');
    expect(second?.status === 'rejected' && second.reason).toBeInstanceOf(AuditUnavailableError);
    while (auditor.stats().queued > 0) await new Promise((r) => setTimeout(r, 5));
    expect((await wrapped.get('A')).reveal()).toBe(PASSWORD);
    await auditor.close();
  });

  it('attached to a chain, records the inner providers backend reads under their own names', async () => {
    const sink = memorySink();
    const auditor = createAuditor({ sinks: [sink] });
    const double = await VaultDouble.start();
    const token = double.createToken({ ttl: 600 }).id;
    double.kvPut('secret', 'app/db', { password: PASSWORD });
    const first = new MemoryProvider({ name: 'layer:memory', initial: { ONLY_FIRST: PASSWORD } });
    const vault = new VaultProvider({
      name: 'layer:vault',
      endpoint: double.url,
      auth: { method: 'token', token },
      env: {},
      cache: false,
      retry: { retries: 0, baseDelayMs: 5, maxDelayMs: 20 },
    });
    const chain = new ChainedProvider([first, vault], { name: 'layers' });
    const outside = new MemoryProvider({ name: 'outside', initial: { ONLY_FIRST: PASSWORD } });
    defer(async () => {
      await chain.close();
      await outside.close();
      await double.close();
    });
    auditor.attach(chain);
    await chain.get('secret/app/db#password');
    await chain.get('ONLY_FIRST');
    await outside.get('ONLY_FIRST');
    double.fail({ kind: 'status', status: 500, body: { errors: [PASSWORD] }, match: 'secret/data/app/boom' });
    await rejection(chain.get('secret/app/boom#x'));
    await auditor.close();
    // The chain answers from its layers: each backend read is its layer's, under the layer's name.
    const reads = sink.records.filter((r) => r.kind === 'operation' && r.operation === 'get');
    expect(reads.map((r) => [r.provider, r.key, r.outcome, r.errorCode, r.servedFrom])).toEqual([
      ['layer:vault', 'secret/app/db#password', 'ok', undefined, 'backend'],
      ['layer:memory', 'ONLY_FIRST', 'ok', undefined, 'backend'],
      ['layer:vault', 'secret/app/boom#x', 'error', 'UNAVAILABLE', 'backend'],
    ]);
    // The Vault read joins the double's log by Vault's request_id.
    const [id] = reads[0]?.requestIds ?? [];
    expect(double.requests.find((e) => e.requestId === id)?.path).toBe('secret/data/app/db');
    expect(new Set(sink.records.map((r) => r.provider))).toEqual(new Set(['layer:memory', 'layer:vault']));
    expectNoLeak([sink.records], [PASSWORD, token], { encodings: true });
  });
});

describe('audit over Vault', () => {
  it('joins Vault request ids and leaks nothing over a fault run', async () => {
    const tmp = tempDir();
    defer(tmp.remove);
    const path = join(tmp.dir, 'audit.ndjson');
    const memory = memorySink();
    const logged: object[] = [];
    const published: unknown[] = [];
    const listener = (m: unknown) => published.push(m);
    subscribe('test:audit-vault', listener);
    defer(() => unsubscribe('test:audit-vault', listener));
    const auditor = createAuditor({
      sinks: [
        memory,
        await fileSink(path),
        loggerSink({ info: (o) => logged.push(o) }),
        channelSink('test:audit-vault'),
      ],
    });
    const double = await VaultDouble.start();
    const token = double.createToken({ ttl: 600 }).id;
    const provider = new VaultProvider({
      endpoint: double.url,
      auth: { method: 'token', token },
      env: {},
      cache: true,
      retry: { retries: 0, baseDelayMs: 5, maxDelayMs: 20 },
    });
    defer(async () => {
      await provider.close();
      await double.close();
    });
    auditor.attach(provider);
    double.kvPut('secret', 'app/db', { password: PASSWORD });
    await provider.get('secret/app/db#password');
    double.fail({
      kind: 'status',
      status: 500,
      body: { errors: [`${FAULT_TEXT} ${PASSWORD}`] },
      match: 'secret/data/app/other',
    });
    await rejection(provider.get('secret/app/other#x'));
    double.fail({
      kind: 'status',
      status: 403,
      body: { errors: ['permission denied'] },
      match: 'secret/data/app/denied',
    });
    await rejection(provider.get('secret/app/denied#x'));
    double.fail({ kind: 'reset', match: 'secret/data/app/reset' });
    await rejection(provider.get('secret/app/reset#x'));
    await rejection(provider.get('secret/app/missing#x'));
    await provider.set('secret/app/new#password', PASSWORD);
    await auditor.close();
    const read = memory.records.find((r) => r.kind === 'operation' && r.key === 'secret/app/db#password');
    expect(read?.requestIds?.[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(read?.servedFrom).toBe('backend');
    const denied = memory.records.find((r) => r.key === 'secret/app/denied#x');
    expect(denied?.outcome).toBe('denied');
    expect(memory.records.find((r) => r.key === 'secret/app/other#x')?.errorCode).toBe('UNAVAILABLE');
    const file = readFileSync(path, 'utf8');
    expect(file.trim().split('\n')).toHaveLength(memory.records.length);
    expectNoLeak([memory.records, file, logged, published], [PASSWORD, FAULT_TEXT, token], {
      encodings: true,
    });
  });
});
