import { REDACTED, type RedactorWarning } from '@secret-provider/core';
import {
  createRedactor,
  defaultSecretKeys,
  NON_SECRET_ENVIRONMENT_KEYS,
} from '@secret-provider/core/redaction';
import { until } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';
import { ConfigProvider } from './redaction-helpers.js';

/** What a service's configuration chain holds: secrets next to plain settings. */
const SERVICE = {
  APP_URL: 'http://localhost:8080',
  APP_HOST: 'localhost',
  PORT: '8080',
  APP_NAME: 'app',
  NODE_ENV: 'production',
  DB_HOST: 'db.internal.example',
  DB_ADDRESS: '10.20.30.40:5432',
  LOG_DIR: '/var/log/app',
  UPSTREAM: 'https://api.example.com/v1/orders',
  DATABASE_URL: 'postgres://app:pg-password-9a8b@db.internal.example:5432/app',
  DB_PASSWORD: 'correct-horse-battery',
  API_TOKEN: 'tok_live_51HbX2eZvKYlo2C',
  SESSION_SECRET: 'abc123',
  STRIPE: 'sk_live_9Zq7YtQ2wX4v',
  CALLBACK: 'https://hooks.example.com/in?access_token=cb-token-77aa88bb',
} as const;

function recorder(): { warnings: RedactorWarning[]; onWarning: (warning: RedactorWarning) => void } {
  const warnings: RedactorWarning[] = [];
  return { warnings, onWarning: (warning) => warnings.push(warning) };
}

describe('redactor: which keys are secrets (the default)', () => {
  it('attached to a whole configuration, masks its secrets and leaves its settings readable', async () => {
    const { warnings, onWarning } = recorder();
    const redactor = createRedactor({ onWarning });
    await using following = redactor.attach(new ConfigProvider(SERVICE));
    await following.ready;
    const line = (text: string) => redactor.redact(text);
    // Settings stay as they are.
    expect(line('listening on http://localhost:8080 (app, production)')).toBe(
      'listening on http://localhost:8080 (app, production)',
    );
    expect(line('db.internal.example 10.20.30.40:5432 /var/log/app/error.log')).toBe(
      'db.internal.example 10.20.30.40:5432 /var/log/app/error.log',
    );
    expect(line('GET https://api.example.com/v1/orders')).toBe('GET https://api.example.com/v1/orders');
    // Secrets are masked: by the key's name, or because the value is not plain configuration.
    expect(line('password correct-horse-battery token tok_live_51HbX2eZvKYlo2C')).toBe(
      `password ${REDACTED} token ${REDACTED}`,
    );
    expect(line('charging with sk_live_9Zq7YtQ2wX4v')).toBe(`charging with ${REDACTED}`);
    expect(line(SERVICE.CALLBACK)).toBe(REDACTED);
    // A connection string, whole or its password alone (a driver that logs its settings).
    expect(line(`connect ${SERVICE.DATABASE_URL}`)).toBe(`connect ${REDACTED}`);
    expect(line('password=pg-password-9a8b host=db.internal.example')).toBe(
      `password=${REDACTED} host=db.internal.example`,
    );
    // One warning, and it means something: a secret too short to mask.
    expect(warnings).toEqual([expect.objectContaining({ code: 'SHORT_SECRET', key: 'SESSION_SECRET' })]);
    expect(JSON.stringify(warnings)).not.toContain('abc123');
  });

  it('names secrets by words in their key, and knows the shell variables that are not', () => {
    for (const key of [
      'DB_PASSWORD',
      'apiKey',
      'x-auth-token',
      'SENTRY_DSN',
      'TLS_PRIVATE_KEY',
      'SESSION_SECRET',
      'AZURE_STORAGE_CONNECTION_STRING',
      'SLACK_WEBHOOK_URL',
      'GOOGLE_APPLICATION_CREDENTIALS',
      'PASSWD',
    ]) {
      expect([key, defaultSecretKeys(key)]).toEqual([key, true]);
    }
    for (const key of [
      'APP_URL',
      'APP_PORT',
      'LOG_LEVEL',
      'DATABASE_URL',
      'STRIPE',
      'SESSION_TTL',
      'CERT_PATH',
    ])
      expect([key, defaultSecretKeys(key)]).toEqual([key, undefined]);
    for (const key of NON_SECRET_ENVIRONMENT_KEYS) expect(defaultSecretKeys(key)).toBe(false);
    expect(defaultSecretKeys('PWD')).toBe(false);
  });

  it('masks values of other keys unless they plainly are configuration', async () => {
    const values: Record<string, string> = {
      A1: 'http://user@localhost:8080/path', // a user name is not a password
      A2: '[::1]:8080',
      A3: '/usr/local/bin:/usr/bin:/bin',
      A4: 'C:\\Users\\App\\data',
      B1: 'Zm9vYmFyLXNlY3JldA/QmFzZTY0', // random text that starts like a path
      B2: 'MixedCase.Host.Example', // not a lower-case host name
      B3: 'us_east_correct_horse', // more than one word
      B4: '4111111111111111', // digits
      B5: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl',
    };
    const redactor = createRedactor();
    await redactor.learnFrom(new ConfigProvider(values));
    for (const [key, value] of Object.entries(values)) {
      expect([key, redactor.redact(value)]).toEqual([key, key.startsWith('A') ? value : REDACTED]);
    }
  });

  it('masks binary values of any key, and values of a key that rotates to a secret', async () => {
    const redactor = createRedactor({ rotationGraceMs: 0 });
    const provider = new ConfigProvider({
      BLOB: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]),
      MODE: 'readonly',
    });
    await using following = redactor.attach(provider);
    await following.ready;
    expect(redactor.redact(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]).toString('base64'))).toBe(REDACTED);
    expect(redactor.redact('mode readonly')).toBe('mode readonly');
    provider.change('MODE', 'Xq9!vL2#pR7z');
    await until(() => redactor.has('Xq9!vL2#pR7z'));
    // And back: the old secret is retired (rotationGraceMs: 0), the setting is not masked.
    provider.change('MODE', 'readwrite');
    await until(() => !redactor.has('Xq9!vL2#pR7z'));
    expect(redactor.redact('mode readwrite')).toBe('mode readwrite');
  });
});

describe('redactor: which keys are secrets (your predicate)', () => {
  it('masks exactly the keys you name, with a warning for short ones; URL passwords always', async () => {
    const { warnings, onWarning } = recorder();
    const redactor = createRedactor({ onWarning });
    const secretKeys = (key: string) => key === 'DB_PASSWORD' || key === 'PORT';
    await redactor.learnFrom(new ConfigProvider(SERVICE), { secretKeys });
    expect(redactor.redact('correct-horse-battery')).toBe(REDACTED);
    expect(redactor.redact('tok_live_51HbX2eZvKYlo2C sk_live_9Zq7YtQ2wX4v')).toBe(
      'tok_live_51HbX2eZvKYlo2C sk_live_9Zq7YtQ2wX4v',
    );
    // DATABASE_URL is not a secret by this predicate, but the password in it is.
    expect(redactor.redact(SERVICE.DATABASE_URL)).toBe(
      `postgres://app:${REDACTED}@db.internal.example:5432/app`,
    );
    expect(warnings.map((w) => w.key)).toEqual(['PORT']);
  });

  it('`() => true` masks every value, as a provider that holds only secrets needs', async () => {
    const { warnings, onWarning } = recorder();
    const redactor = createRedactor({ onWarning, secretKeys: () => true });
    await redactor.learnFrom(new ConfigProvider(SERVICE));
    expect(redactor.redact('http://localhost:9090')).toBe(`http://${REDACTED}:9090`);
    expect(warnings.map((w) => w.key).sort()).toEqual(['APP_NAME', 'PORT', 'SESSION_SECRET']);
  });

  it('gets the provider name, composes with the default, and fails closed when it throws', async () => {
    const seen: string[] = [];
    const redactor = createRedactor({
      secretKeys: (key, provider) => {
        seen.push(`${provider}:${key}`);
        if (key === 'BROKEN') throw new Error('predicate failed');
        return provider === 'vault' ? true : defaultSecretKeys(key, provider);
      },
    });
    await redactor.learnFrom(new ConfigProvider({ SETTING: 'a-plain-setting' }, 'vault'));
    await redactor.learnFrom(new ConfigProvider({ SETTING: 'another-setting', BROKEN: 'localhost' }));
    expect(seen.sort()).toEqual(['config:BROKEN', 'config:SETTING', 'vault:SETTING']);
    expect(redactor.redact('a-plain-setting another-setting localhost')).toBe(
      `${REDACTED} ${REDACTED} ${REDACTED}`,
    );
  });

  it("attach's predicate also decides for keys the provider adds and rotates later", async () => {
    const redactor = createRedactor();
    const provider = new ConfigProvider({ FEATURE: 'flag-value-1' });
    await using following = redactor.attach(provider, { secretKeys: (key) => key.startsWith('S_') });
    await following.ready;
    expect(redactor.has('flag-value-1')).toBe(false);
    provider.change('S_ADDED', 'added-secret-1');
    provider.change('FEATURE', 'Xq9!vL2#pR7z');
    await until(() => redactor.has('added-secret-1'));
    // Give the rotation of FEATURE the same time to be read: it stays unmasked.
    provider.change('S_LATER', 'later-secret-2');
    await until(() => redactor.has('later-secret-2'));
    expect(redactor.has('Xq9!vL2#pR7z')).toBe(false);
  });

  it("wrap's predicate decides for values read and written through the view", async () => {
    const redactor = createRedactor();
    const view = redactor.wrap(
      new ConfigProvider({ APP_URL: 'http://localhost:8080', OTHER: 'xyz-123-abc' }),
      {
        secretKeys: (key) => key !== 'OTHER' && defaultSecretKeys(key),
      },
    );
    await view.get('APP_URL');
    await view.get('OTHER');
    await view.set('DB_PASSWORD', 'written-password-1');
    expect(redactor.redact('http://localhost:8080 xyz-123-abc written-password-1')).toBe(
      `http://localhost:8080 xyz-123-abc ${REDACTED}`,
    );
    await view.close();
  });
});
