import { describeProviderConformance } from '@secret-provider/conformance';
import { ConsulProvider } from '@secret-provider/consul';
import { ConsulDouble } from '@secret-provider/doubles/consul';
import { afterEach, beforeEach, describe, it } from 'vitest';

/** Writes to the double out of band, as another Consul client would. */
const backendOf = (double: ConsulDouble, prefix: string) => ({
  set: async (key: string, value: string) => void double.put(prefix + key, value),
  delete: async (key: string) => double.delete(prefix + key),
  read: async (key: string) => double.entry(prefix + key)?.Value?.toString('utf8'),
});

/** The double answers the next request with a 500 whose body quotes the error (key and value). */
const hooks = {
  failNextCall: ({ double }: { double: ConsulDouble }, error: Error) =>
    double.fail({ kind: 'status', status: 500, body: error.message }),
  makeUnreachable: ({ double }: { double: ConsulDouble }) => {
    double.fail({ kind: 'reset' }, 1_000_000);
    return () => double.clearFaults();
  },
};

describeProviderConformance({
  name: 'consul',
  test: { describe, it, beforeEach, afterEach },
  create: async () => {
    const double = await ConsulDouble.start();
    return {
      provider: new ConsulProvider({ address: double.url, prefix: 'app/', wait: 2_000, minInterval: 20 }),
      backend: backendOf(double, 'app/'),
      cleanup: () => double.close(),
      double,
    };
  },
  ...hooks,
});

describeProviderConformance({
  name: 'consul (read-only, with ACLs)',
  test: { describe, it, beforeEach, afterEach },
  create: async () => {
    const double = await ConsulDouble.start({
      acl: { tokens: { reader: [{ prefix: 'app/', policy: 'read' }] } },
    });
    return {
      provider: new ConsulProvider({
        address: double.url,
        prefix: 'app/',
        token: 'reader',
        readOnly: true,
        wait: 2_000,
        minInterval: 20,
      }),
      backend: backendOf(double, 'app/'),
      cleanup: () => double.close(),
      double,
    };
  },
  ...hooks,
});
