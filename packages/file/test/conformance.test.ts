import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeProviderConformance } from '@secret-provider/conformance';
import { FileProvider, formatDotenvValue, parseDotenv } from '@secret-provider/file';
import { tempDir } from '@secret-provider/testing';
import { afterEach, beforeEach, describe, it } from 'vitest';
import { atomicWriterUpdate, currentPayload } from './helpers.js';

// Each backend edits the files behind the provider's back the way people and tools do: JSON and
// .env files rewritten in place, key files written in place, Kubernetes volumes switched by
// AtomicWriter. Permission checks are on (tests' files are 0644 by umask): warnings are allowed.

const readOr = (path: string, fallback: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
};

describeProviderConformance({
  name: 'file (json, nested)',
  test: { describe, it, beforeEach, afterEach },
  create: async () => {
    const { dir, remove: cleanup } = tempDir('file-provider-');
    const path = join(dir, 'secrets.json');
    writeFileSync(path, JSON.stringify({ unrelated: { nested: 'x' } }));
    const edit = (change: (doc: Record<string, unknown>) => void) => {
      const doc = JSON.parse(readOr(path, '{}')) as Record<string, unknown>;
      change(doc);
      writeFileSync(path, JSON.stringify(doc, null, 2));
    };
    return {
      provider: new FileProvider({ path }),
      backend: {
        set: async (key: string, value: string) =>
          edit((doc) => {
            doc[key] = value;
          }),
        delete: async (key: string) => edit((doc) => void delete doc[key]),
      },
      cleanup,
    };
  },
});

describeProviderConformance({
  name: 'file (.env)',
  test: { describe, it, beforeEach, afterEach },
  create: async () => {
    const { dir, remove: cleanup } = tempDir('file-provider-');
    const path = join(dir, '.env');
    const edit = (change: (values: Map<string, string>) => void) => {
      const values = parseDotenv(readOr(path, ''));
      change(values);
      writeFileSync(path, [...values].map(([k, v]) => `${k}=${formatDotenvValue(v)}\n`).join(''));
    };
    return {
      provider: new FileProvider({ path }),
      backend: {
        set: async (key: string, value: string) => edit((values) => void values.set(key, value)),
        delete: async (key: string) => edit((values) => void values.delete(key)),
      },
      cleanup,
    };
  },
});

describeProviderConformance({
  name: 'file (directory)',
  test: { describe, it, beforeEach, afterEach },
  create: async () => {
    const { dir, remove: cleanup } = tempDir('file-provider-');
    return {
      provider: new FileProvider({ path: dir }),
      backend: {
        set: async (key: string, value: string) => writeFileSync(join(dir, key), `${value}\n`),
        delete: async (key: string) => unlinkSync(join(dir, key)),
      },
      cleanup,
    };
  },
});

describeProviderConformance({
  name: 'file (Kubernetes secret volume, read-only)',
  test: { describe, it, beforeEach, afterEach },
  create: async () => {
    const { dir, remove: cleanup } = tempDir('file-provider-');
    atomicWriterUpdate(dir, {});
    const read = (path: string) => readFileSync(path, 'utf8');
    return {
      provider: new FileProvider({ path: dir }),
      backend: {
        set: async (key: string, value: string) =>
          atomicWriterUpdate(dir, { ...currentPayload(dir, read), [key]: value }),
        delete: async (key: string) => {
          const payload = currentPayload(dir, read);
          delete payload[key];
          atomicWriterUpdate(dir, payload);
        },
      },
      cleanup,
    };
  },
});
