import { createEmitter, isSecretError, Secret, type SecretEvents } from '@secret-provider/core';
import { EtcdProvider } from '@secret-provider/etcd';
import { expectNoLeak, rejection, until } from '@secret-provider/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, ROOT_PASSWORD } from './cluster.js';
import { etcdAvailable } from './helpers.js';

const available = etcdAvailable();
const APP_PASSWORD = 'app-pa55word-never-shown';

describe.skipIf(!available)('EtcdProvider with etcd authentication', () => {
  let cluster: EtcdCluster;
  const open: EtcdProvider[] = [];
  const provider = (auth?: { username: string; password: string | Secret<string> }, prefix = '') => {
    const created = new EtcdProvider({ hosts: cluster.endpoints, prefix, requestTimeout: 2_000, auth });
    open.push(created);
    return created;
  };

  beforeAll(async () => {
    cluster = await EtcdCluster.start(1, { auth: true });
    await cluster.ctl(['put', 'allowed/db', 'readable']);
    await cluster.ctl(['put', 'secret/root-only', 'hidden']);
    await cluster.ctl(['role', 'add', 'reader']);
    await cluster.ctl(['role', 'grant-permission', 'reader', '--prefix=true', 'read', 'allowed/']);
    await cluster.ctl(['role', 'grant-permission', 'reader', '--prefix=true', 'readwrite', 'allowed/rw/']);
    await cluster.ctl(['user', 'add', `app:${APP_PASSWORD}`]);
    await cluster.ctl(['user', 'grant-role', 'app', 'reader']);
  }, 30_000);

  afterAll(async () => {
    await Promise.all(open.map((p) => p.close()));
    await cluster?.destroy();
  });

  it('reads what its role allows; a key outside it is ACCESS_DENIED, not NOT_FOUND', async () => {
    const etcd = provider({ username: 'app', password: new Secret(APP_PASSWORD) });
    expect((await etcd.get('allowed/db')).reveal()).toBe('readable');
    const denied = await rejection(etcd.get('secret/root-only'));
    expect(isSecretError(denied, 'ACCESS_DENIED'), String(denied)).toBe(true);
    expect((denied as Error).message).not.toMatch(/etcdserver/);
    const write = await rejection(etcd.set('allowed/db', 'overwritten'));
    expect(isSecretError(write, 'ACCESS_DENIED')).toBe(true);
    await etcd.set('allowed/rw/token', 'written by app');
    expect((await etcd.get('allowed/rw/token')).reveal()).toBe('written by app');
    expectNoLeak([denied, write, etcd], [APP_PASSWORD]);
  });

  it('a whole prefix without permission: listing is ACCESS_DENIED, a watch reports it as an error event', async () => {
    const etcd = provider({ username: 'app', password: APP_PASSWORD }, 'secret/');
    expect(isSecretError(await rejection(etcd.keys()), 'ACCESS_DENIED')).toBe(true);
    const emitter = createEmitter();
    const errors: SecretEvents['error'][] = [];
    emitter.on('error', (event) => errors.push(event));
    const handle = etcd.watch(emitter);
    await handle.ready;
    await until(() => errors.length > 0, 5_000, 'an error event');
    expect(errors[0]?.error.code).toBe('ACCESS_DENIED');
    expectNoLeak(errors, [APP_PASSWORD]);
    await handle.stop();
  });

  it('a wrong password, or none, is ACCESS_DENIED with neither password in the error', async () => {
    const wrong = provider({ username: 'app', password: 'not-the-password' });
    const error = await rejection(wrong.get('allowed/db'));
    expect(isSecretError(error, 'ACCESS_DENIED'), String(error)).toBe(true);
    expectNoLeak([error, wrong], ['not-the-password', APP_PASSWORD, ROOT_PASSWORD]);
    const anonymous = provider();
    const none = await rejection(anonymous.get('allowed/db'));
    expect(isSecretError(none, 'ACCESS_DENIED'), String(none)).toBe(true);
  });
});
