// A small service written against the published packages, as an application developer would:
// environment variables (and a .env file) over embedded defaults, values kept in `Secret`, a watch
// that hears the database password rotate, and only redacted output. `stranger-app.test.ts`
// installs the release tarballs with npm into a fresh directory and runs this file compiled by
// tsc, bundled by esbuild and, on Node.js 24, as it is (type stripping, native `await using`).
import { inspect } from 'node:util';
import { ChainedProvider } from '@secret-provider/chained';
import { createEmitter, isSecretError, REDACTED, Secret } from '@secret-provider/core';
import { EnvProvider } from '@secret-provider/env';
import { MemoryProvider } from '@secret-provider/memory';

console.log(`node ${process.versions.node}`);

const defaults = new MemoryProvider({
  name: 'defaults',
  initial: {
    API_TOKEN: 'stranger-default-token-5e1f', // shadowed by the environment
    DB_PASSWORD: 'stranger-default-db-pass-77ac',
    SMTP_PASSWORD: 'stranger-default-smtp-9b02', // shadowed by the .env file
  },
});
// STRANGER_API_TOKEN comes from the environment, STRANGER_SMTP_PASSWORD from ./.env.
await using secrets = new ChainedProvider([
  new EnvProvider({ name: 'env', prefix: 'STRANGER_', files: ['.env'] }),
  defaults,
]);

for (const key of ['API_TOKEN', 'DB_PASSWORD', 'SMTP_PASSWORD']) {
  const secret = await secrets.get(key);
  const { servedBy } = await secrets.explain(key);
  console.log(`${key} from ${servedBy}: ${secret} ${inspect(secret)} ${JSON.stringify({ [key]: secret })}`);
}

try {
  await secrets.get('MISSING_KEY');
  console.log('MISSING_KEY: found?');
} catch (error) {
  console.log(`MISSING_KEY: ${isSecretError(error, 'NOT_FOUND') ? error.code : 'unexpected error'}`);
}

const inline = new Secret('stranger-inline-secret-4d2a');
console.log(`inline: ${inline}, redacted label ${String(inline) === REDACTED}`);

// Watchers do not keep the process alive; this deadline does, and fails loudly.
const events = createEmitter();
const rotated = new Promise<readonly string[]>((resolve, reject) => {
  const deadline = setTimeout(() => reject(new Error('no rotation event within 10 s')), 10_000);
  events.on('rotated', ({ keys }) => {
    clearTimeout(deadline);
    resolve(keys);
  });
});
const before = await secrets.get('DB_PASSWORD');
const watch = secrets.watch(events);
await watch.ready;
await defaults.set('DB_PASSWORD', 'stranger-rotated-db-pass-31f0');
console.log(`rotated: ${(await rotated).join(',')}`);
const after = await secrets.get('DB_PASSWORD');
console.log(`DB_PASSWORD now ${after}, changed ${!after.equals(before)}`);
watch.stop();
console.log('done');
