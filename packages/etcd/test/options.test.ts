// Runs without etcd: what loading the package costs, and the options it refuses.
import { createRequire } from 'node:module';
import { isSecretError } from '@secret-provider/core';
import { expectNoLeak, rejection } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';

const loadedClientModules = () =>
  Object.keys(createRequire(import.meta.url).cache).filter((path) =>
    /[\\/](etcd3|@grpc[\\/]grpc-js|protobufjs)[\\/]/.test(path),
  );

describe('EtcdProvider without a cluster', () => {
  // First in this file, in a process of its own: nothing else has loaded the client yet.
  it('importing the package and creating a provider load nothing of etcd3 or gRPC; the first call does', async () => {
    const { EtcdProvider } = await import('@secret-provider/etcd');
    const etcd = new EtcdProvider({ hosts: 'http://127.0.0.1:1', requestTimeout: 500 });
    expect(loadedClientModules()).toEqual([]);
    const error = await rejection(etcd.get('anything'));
    expect(isSecretError(error, 'UNAVAILABLE'), String(error)).toBe(true);
    expect(loadedClientModules().length).toBeGreaterThan(0);
    await etcd.close();
  });

  it('refuses unusable options with INVALID_CONFIG, quoting no credentials', async () => {
    const { EtcdProvider } = await import('@secret-provider/etcd');
    const refused = (options: unknown) => {
      try {
        new EtcdProvider(options as ConstructorParameters<typeof EtcdProvider>[0]);
      } catch (error) {
        return error;
      }
      throw new Error('expected the options to be refused');
    };
    for (const options of [
      { hosts: [] },
      { hosts: 'http://user:pa55@127.0.0.1:2379' },
      { hosts: 'http://127.0.0.1:2379/path' },
      { hosts: ['http://127.0.0.1:2379', 'https://127.0.0.1:2380'] },
      { hosts: 'http://127.0.0.1:2379', requestTimeout: 0 },
      { hosts: 'http://127.0.0.1:2379', document: '' },
      { hosts: 'http://127.0.0.1:2379', jsonKeys: 'deep' },
      { hosts: 'http://127.0.0.1:2379', auth: { username: '', password: 'pa55' } },
    ]) {
      const error = refused(options);
      expect(isSecretError(error, 'INVALID_CONFIG'), JSON.stringify(options)).toBe(true);
      expectNoLeak([error], ['pa55']);
    }
  });

  it('never shows the password: not in JSON, inspect or errors', async () => {
    const { EtcdProvider } = await import('@secret-provider/etcd');
    const etcd = new EtcdProvider({
      hosts: 'http://127.0.0.1:1',
      requestTimeout: 300,
      auth: { username: 'app', password: 'auth-pa55word' },
    });
    const error = await rejection(etcd.get('k'));
    expect(isSecretError(error, 'UNAVAILABLE')).toBe(true);
    expectNoLeak([etcd, error], ['auth-pa55word']);
    await etcd.close();
  });

  it('refuses options it does not honour (expiresAt, tags) with UNSUPPORTED', async () => {
    const { EtcdProvider } = await import('@secret-provider/etcd');
    const etcd = new EtcdProvider({ hosts: 'http://127.0.0.1:1' });
    const expiring = await rejection(etcd.set('k', 'v', { expiresAt: new Date(Date.now() + 60_000) }));
    expect(isSecretError(expiring, 'UNSUPPORTED')).toBe(true);
    const tagged = await rejection(etcd.set('k', 'v', { tags: { team: 'a' } }));
    expect(isSecretError(tagged, 'UNSUPPORTED')).toBe(true);
    await etcd.close();
  });
});
