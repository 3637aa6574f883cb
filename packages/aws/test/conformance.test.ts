import { AwsSecretsManagerProvider, type AwsSecretsManagerProviderOptions } from '@secret-provider/aws';
import { describeProviderConformance } from '@secret-provider/conformance';
import { SecretsManagerDouble } from '@secret-provider/doubles/aws';
import { afterEach, beforeEach, describe, it } from 'vitest';

const credentials = { accessKeyId: 'AKIDCONFORMANCE', secretAccessKey: 'conformance-secret-access-key' };

/** Writes to the double out of band, as another Secrets Manager client would. */
const backendOf = (double: SecretsManagerDouble) => ({
  set: async (key: string, value: string) => void double.put(key, value),
  delete: async (key: string) => double.delete(key),
  read: async (key: string) => {
    const value = double.read(key);
    return value === undefined ? undefined : value.toString();
  },
});

/**
 * The double answers the next request with a 500 whose message quotes the error (key and value).
 * A fault still pending (armed for a call the cache answered) is replaced, not queued.
 */
const hooks = {
  failNextCall: ({ double }: { double: SecretsManagerDouble }, error: Error) => {
    double.clearFaults();
    double.fail({ kind: 'status', status: 500, type: 'InternalServiceError', message: error.message });
  },
  makeUnreachable: ({ double }: { double: SecretsManagerDouble }) => {
    double.fail({ kind: 'reset' }, 1_000_000);
    return () => double.clearFaults();
  },
};

const create = (options: Partial<AwsSecretsManagerProviderOptions>) => async () => {
  const double = await SecretsManagerDouble.start({ region: 'eu-west-1' });
  return {
    provider: new AwsSecretsManagerProvider({
      region: 'eu-west-1',
      endpoint: double.url,
      credentials,
      pollInterval: 20,
      pollJitter: 0,
      ...options,
    }),
    backend: backendOf(double),
    cleanup: () => double.close(),
    double,
  };
};

describeProviderConformance({
  name: 'aws (deletion without recovery)',
  test: { describe, it, beforeEach, afterEach },
  create: create({ forceDeleteWithoutRecovery: true }),
  ...hooks,
});

describeProviderConformance({
  name: 'aws (cache off)',
  test: { describe, it, beforeEach, afterEach },
  create: create({ forceDeleteWithoutRecovery: true, cache: false }),
  ...hooks,
});
