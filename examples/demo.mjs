// The product's main job, end to end, on embedded defaults (no server needed): a chain of
// environment variables, a Kubernetes-style secret volume and embedded defaults resolves
// secrets, explains where each comes from, shows what the redactor masks and what it leaves
// readable, hears a rotation done by the kubelet's atomic switch, and prints every value redacted.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainedProvider } from '@secret-provider/chained';
import { createEmitter, createRedactor, isSecretError, Secret } from '@secret-provider/core';
import { defaultSecretKeys } from '@secret-provider/core/redaction';
import { EnvProvider } from '@secret-provider/env';
import { FileProvider } from '@secret-provider/file';
import { MemoryProvider } from '@secret-provider/memory';
import { writeSecretVolume } from './kubelet-volume.mjs';

const log = (...args) => console.log(...args);
const volume = await mkdtemp(join(tmpdir(), 'secret-volume-'));

// 1. Embedded defaults, as a service ships for local development.
const defaults = new MemoryProvider({
  name: 'defaults',
  initial: {
    DATABASE_URL: 'postgres://app:dev-password-1@localhost:5432/app', // value
    API_KEY: 'sk_test_demo_default_4eC39HqLyjW', // value
    SMTP_PASSWORD: 'smtp-dev-password-77', // value
    // Configuration beside the secrets: the redactor leaves it readable.
    PORT: '8080',
    SERVICE_URL: 'http://localhost:8080',
  },
});

// 2. A secret volume mounted by Kubernetes.
await writeSecretVolume(volume, {
  DATABASE_URL: 'postgres://app:k8s-password-v1@db:5432/app', // value
  API_KEY: 'sk_live_from_volume_51HbX2eZvKYlo2C', // value
});
const files = new FileProvider({ name: 'k8s-volume', path: volume, format: 'directory' });

// 3. Environment variables with the APP_ prefix override everything.
const env = new EnvProvider({
  name: 'env',
  env: { APP_API_KEY: 'sk_live_env_override_9Zq7Yt', HOME: '/home/app' }, // value
  prefix: 'APP_',
  stripPrefix: true,
});

const secrets = new ChainedProvider([env, files, defaults]);

log('== resolving through env > k8s-volume > defaults');
for (const key of ['API_KEY', 'DATABASE_URL', 'SMTP_PASSWORD']) {
  const secret = await secrets.get(key);
  log(`${key} -> ${secret}  (template literal)`, secret, JSON.stringify({ [key]: secret }));
}
log('keys:', await secrets.keys());

log('\n== explain(): who serves a key, who is shadowed (no values)');
log((await secrets.explain('DATABASE_URL')).entries.map((e) => `${e.provider}: ${e.status}`).join(' | '));
log((await secrets.explain('API_KEY')).entries.map((e) => `${e.provider}: ${e.status}`).join(' | '));

log('\n== the redactor attached to the chain, default secretKeys: what it masks, what it leaves');
const redactor = createRedactor(); // secretKeys: defaultSecretKeys
const following = redactor.attach(secrets); // learns every value, follows rotations
await following.ready;
for (const key of await secrets.keys()) {
  const value = (await secrets.get(key)).reveal();
  const masked = redactor.redact(value) !== value;
  const named = defaultSecretKeys(key); // true: a secret name, false: never a secret, else the value decides
  const why =
    named === true
      ? 'named like a secret'
      : named === false
        ? 'never a secret'
        : masked
          ? 'not plain configuration'
          : 'plain configuration';
  // Only configuration is printed as it is; a masked value as the redactor shows it.
  log(`${masked ? 'masks ' : 'leaves'} ${key.padEnd(13)} ${why.padEnd(23)} ${redactor.redact(value)}`);
}

log('\n== it masks values after they were unwrapped (a driver error, a debug dump)');
const url = (await secrets.get('DATABASE_URL')).reveal();
const driverError = new Error(`connect ECONNREFUSED: ${url}`);
log(redactor.redact(`pool failed: ${driverError.message}`));
log(redactor.redact({ level: 'error', err: driverError, auth: Buffer.from(url).toString('base64') }));

log('\n== a missing key is a typed error, never undefined');
try {
  await secrets.get('STRIPE_KEY');
} catch (error) {
  log(isSecretError(error, 'NOT_FOUND') ? `${error.name} [${error.code}]: ${error.message}` : error);
}

log('\n== the kubelet rotates DATABASE_URL (atomic ..data switch)');
const events = createEmitter();
const seen = [];
events.on('*', (type, event) => seen.push({ type, event }));
// Watchers do not keep a process alive by themselves; this deadline does, and fails loudly.
const rotated = new Promise((resolve, reject) => {
  const deadline = setTimeout(() => reject(new Error('no rotation event within 10 s')), 10_000);
  events.on('rotated', (event) => {
    clearTimeout(deadline);
    resolve(event);
  });
});
const watch = secrets.watch(events);
await watch.ready;
const rotatedValue = 'postgres://app:k8s-password-v2@db:5432/app'; // value
await writeSecretVolume(volume, {
  DATABASE_URL: rotatedValue,
  API_KEY: 'sk_live_from_volume_51HbX2eZvKYlo2C', // value
});
const event = await rotated;
log('rotated event:', event);
const current = await secrets.get('DATABASE_URL');
log('DATABASE_URL now ->', current, '| is the new value:', Secret.equals(current, rotatedValue));
// API_KEY is shadowed by env: a change to it in the volume is not a rotation of what the app sees.
await new Promise((resolve) => setTimeout(resolve, 200));
log(redactor.redact(`new pool: ${current.reveal()} | old, still masked for a grace period: ${url}`));
log('events seen:', seen.map(({ type, event: e }) => `${type}(${e.keys ?? e.key})`).join(', '));

await watch.stop();
await following.stop();
await secrets.close();
await rm(volume, { recursive: true, force: true });
log('\ndone: every value above went through Secret, which shows only [REDACTED].');
