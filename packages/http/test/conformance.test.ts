import { describeProviderConformance } from '@secret-provider/conformance';
import { HttpProvider } from '@secret-provider/http';
import { pause } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, it } from 'vitest';
import { DocumentServer } from './server.js';

// The provider is read-only: the suite changes the document at the server. A document is fresh
// for `minInterval` at most (the server says `no-cache`), so a change is visible once that has
// passed; the backend's writes resolve then.
const MIN_INTERVAL = 20;

describeProviderConformance({
  name: 'http',
  test: { describe, it, beforeEach, afterEach },
  create: async () => {
    const server = await DocumentServer.start({ etag: true, cacheControl: 'no-cache', body: '{}' });
    const document: Record<string, string> = {};
    const publish = async () => {
      server.setBody(JSON.stringify(document));
      await pause(MIN_INTERVAL + 10);
    };
    return {
      provider: new HttpProvider({ url: server.url(), pollInterval: 50, minInterval: MIN_INTERVAL }),
      backend: {
        set: async (key, value) => {
          document[key] = value;
          await publish();
        },
        delete: async (key) => {
          delete document[key];
          await publish();
        },
      },
      cleanup: () => server.close(),
      server,
    };
  },
  // The server answers the next request with a 500 whose body quotes the error (key and value).
  failNextCall: ({ server }, error) => server.fail({ kind: 'status', status: 500, body: error.message }),
  makeUnreachable: ({ server }) => {
    server.fail({ kind: 'reset' }, 1_000_000);
    return () => server.clearFaults();
  },
});
