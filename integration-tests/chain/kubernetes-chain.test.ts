// The everyday path: env > Kubernetes secret volume > memory defaults, rotated by the kubelet's
// atomic `..data` switch, with a redactor following the chain. Real files, real inotify.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { ChainedProvider } from '@secret-provider/chained';
import { createEmitter, createRedactor, type SecretEvents } from '@secret-provider/core';
import { EnvProvider } from '@secret-provider/env';
import { FileProvider } from '@secret-provider/file';
import { MemoryProvider } from '@secret-provider/memory';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ESM helper without declarations, shared with the demo
import { writeSecretVolume } from '../../examples/kubelet-volume.mjs';

const writeVolume = writeSecretVolume as (dir: string, files: Record<string, string>) => Promise<void>;

const VALUES = {
  dbV1: 'postgres://app:volume-pass-v1@db/app',
  dbV2: 'postgres://app:volume-pass-v2@db/app',
  apiVolume: 'api-key-from-volume-000111',
  apiVolumeRotated: 'api-key-from-volume-rotated-222',
  apiEnv: 'api-key-from-env-333444',
  smtpDefault: 'smtp-default-password-555',
};

let volume: string;
let chain: ChainedProvider;
const events: Array<{ type: keyof SecretEvents; event: unknown }> = [];
const warnings: string[] = [];

beforeEach(async () => {
  events.length = 0;
  volume = await mkdtemp(join(tmpdir(), 'k8s-chain-'));
  await writeVolume(volume, { DATABASE_URL: VALUES.dbV1, API_KEY: VALUES.apiVolume });
  chain = new ChainedProvider([
    new EnvProvider({ env: { APP_API_KEY: VALUES.apiEnv }, prefix: 'APP_', stripPrefix: true }),
    new FileProvider({ name: 'volume', path: volume }),
    new MemoryProvider({
      name: 'defaults',
      initial: { SMTP_PASSWORD: VALUES.smtpDefault, DATABASE_URL: 'unused-default-db' },
    }),
  ]);
});

afterEach(async () => {
  await chain.close();
  await rm(volume, { recursive: true, force: true });
  // Nothing observable may carry a value.
  const observed = [
    ...events.map((e) => `${JSON.stringify(e)} ${inspect(e, { depth: Infinity })}`),
    ...warnings,
  ].join('\n');
  for (const value of Object.values(VALUES)) expect(observed).not.toContain(value);
});

async function waitFor(predicate: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${ms} ms; events: ${JSON.stringify(events)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('env > Kubernetes volume > memory', () => {
  it('resolves each key from the right layer', async () => {
    expect((await chain.get('API_KEY')).reveal()).toBe(VALUES.apiEnv);
    expect((await chain.get('DATABASE_URL')).reveal()).toBe(VALUES.dbV1);
    expect((await chain.get('SMTP_PASSWORD')).reveal()).toBe(VALUES.smtpDefault);
    const explained = await chain.explain('DATABASE_URL');
    expect(explained.servedBy).toBe('volume');
    expect(explained.entries.map((e) => e.status)).toEqual(['missing', 'serving', 'shadowed']);
    expect(JSON.stringify(explained)).not.toContain(VALUES.dbV1);
  });

  it('hears an AtomicWriter rotation once, serves the new value, and ignores shadowed changes', async () => {
    const emitter = createEmitter();
    emitter.on('*', (type, event) => events.push({ type, event }));
    const handle = chain.watch(emitter);
    await handle.ready;
    // DATABASE_URL rotates (visible); API_KEY changes in the volume but env shadows it (invisible).
    await writeVolume(volume, { DATABASE_URL: VALUES.dbV2, API_KEY: VALUES.apiVolumeRotated });
    await waitFor(() => events.some((e) => e.type === 'rotated'));
    await new Promise((resolve) => setTimeout(resolve, 300)); // room for duplicates to show up
    const rotated = events.filter((e) => e.type === 'rotated');
    expect(rotated).toHaveLength(1);
    expect(rotated[0]?.event).toMatchObject({ keys: ['DATABASE_URL'], source: 'volume' });
    expect(events.filter((e) => e.type !== 'warning').map((e) => e.type)).toEqual(['rotated']);
    expect((await chain.get('DATABASE_URL')).reveal()).toBe(VALUES.dbV2);
    expect((await chain.get('API_KEY')).reveal()).toBe(VALUES.apiEnv);
    await handle.stop();
  });

  it('reports a removal from the volume that uncovers a default as a rotation', async () => {
    const emitter = createEmitter();
    emitter.on('*', (type, event) => events.push({ type, event }));
    const handle = chain.watch(emitter);
    await handle.ready;
    await writeVolume(volume, { API_KEY: VALUES.apiVolume }); // DATABASE_URL removed from the volume
    await waitFor(() => events.some((e) => e.type === 'rotated' || e.type === 'removed'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events.filter((e) => e.type !== 'warning').map((e) => e.type)).toEqual(['rotated']);
    expect((await chain.get('DATABASE_URL')).reveal()).toBe('unused-default-db');
    await handle.stop();
  });

  it('keeps a redactor following the chain current across the rotation', async () => {
    const redactor = createRedactor({ rotationGraceMs: 60_000 });
    const following = redactor.attach(chain);
    await following.ready;
    const emitter = createEmitter();
    emitter.on('*', (type, event) => events.push({ type, event }));
    const handle = chain.watch(emitter);
    await handle.ready;
    await writeVolume(volume, { DATABASE_URL: VALUES.dbV2, API_KEY: VALUES.apiVolume });
    await waitFor(() => events.some((e) => e.type === 'rotated'));
    await waitFor(() => !redactor.redact(`x ${VALUES.dbV2}`).includes(VALUES.dbV2));
    const line = redactor.redact(
      `old=${VALUES.dbV1} new=${VALUES.dbV2} smtp=${VALUES.smtpDefault} api=${VALUES.apiEnv}`,
    );
    warnings.push(line);
    expect(line).toBe('old=[REDACTED] new=[REDACTED] smtp=[REDACTED] api=[REDACTED]');
    await handle.stop();
    await following.stop();
  });
});
