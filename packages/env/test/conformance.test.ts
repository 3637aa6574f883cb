import { describeProviderConformance } from '@secret-provider/conformance';
import { type EnvObject, EnvProvider } from '@secret-provider/env';
import { afterEach, beforeEach, describe, it } from 'vitest';

// The backend writes the injected environment object behind the provider's back, so watching
// is checked by what the provider notices (its poll), not by its own writes.
const backendOf = (env: EnvObject, prefix = '') => ({
  set: async (key: string, value: string) => {
    env[prefix + key] = value;
  },
  delete: async (key: string) => {
    delete env[prefix + key];
  },
});

describeProviderConformance({
  name: 'env (writable, prefix stripped)',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const env: EnvObject = { UNRELATED: 'not selected' };
    return {
      provider: new EnvProvider({ env, prefix: 'APP_', writable: true, pollInterval: 20 }),
      backend: backendOf(env, 'APP_'),
    };
  },
});

describeProviderConformance({
  name: 'env (read-only, all variables)',
  test: { describe, it, beforeEach, afterEach },
  create: () => {
    const env: EnvObject = {};
    return { provider: new EnvProvider({ env, all: true, pollInterval: 20 }), backend: backendOf(env) };
  },
});
