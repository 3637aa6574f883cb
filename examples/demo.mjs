// The product's main job, end to end, on embedded defaults (no server needed):
// providers resolve secrets, a rotation arrives as an event, and every value printed is redacted.
import { CachedProvider, createEmitter, isSecretError } from '@secret-provider/core';
import { MemoryProvider } from '@secret-provider/memory';

const log = (...args) => console.log(...args);

// Embedded defaults, as a service would ship for local development.
const defaults = new MemoryProvider({
  name: 'defaults',
  initial: {
    DATABASE_URL: 'postgres://app:dev-password-1@localhost:5432/app', // value
    API_KEY: 'sk_live_demo_51HbX2eZvKYlo2C', // value
  },
});

// A cache in front of the provider: one backend read per key at a time, TTL with jitter.
const secrets = new CachedProvider(defaults, { ttl: 60_000 });

log('== resolving secrets');
const databaseUrl = await secrets.get('DATABASE_URL');
log('DATABASE_URL ->', databaseUrl);
log(`as a template literal: ${databaseUrl}`);
log('inside a log record:', JSON.stringify({ event: 'connect', url: databaseUrl }));
log('metadata (no value):', await secrets.metadata('DATABASE_URL'));

log('\n== a missing key is a typed error, never undefined');
try {
  await secrets.get('STRIPE_KEY');
} catch (error) {
  log(isSecretError(error, 'NOT_FOUND') ? `${error.name} [${error.code}]: ${error.message}` : error);
}

log('\n== watching for rotation');
const events = createEmitter();
const rotated = new Promise((resolve) => events.on('rotated', resolve));
const watch = secrets.watch(events);
await watch.ready;

// Someone rotates the API key (here, out of band in the backing store).
defaults.store.set(
  'API_KEY',
  'sk_live_demo_rotated_9Zq7Yt', // value
);
const event = await rotated;
log('rotated event:', event);
log('API_KEY after rotation ->', await secrets.get('API_KEY'), '(the cache was invalidated by the event)');

log('\n== cache statistics (counts only)');
log(secrets.stats());

await watch.stop();
await secrets.close();
log('\ndone: every value above was printed through Secret, which shows only [REDACTED].');
