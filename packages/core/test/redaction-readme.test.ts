import { readFileSync } from 'node:fs';
import { createRedactor, REDACTED, type RedactorWarning } from '@secret-provider/core';
import * as redaction from '@secret-provider/core/redaction';
import { defaultSecretKeys } from '@secret-provider/core/redaction';
import { describe, expect, it } from 'vitest';
import { ConfigProvider } from './redaction-helpers.js';

// Each example of the README's redaction section runs here, line for line (the first test
// checks that), followed by assertions on what it did.

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('\n## Redaction\n')).split(/\n## (?!Redaction\n)/)[0] ?? '';
const examples = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] ?? '');
// Formatting aside: whitespace, and the trailing commas a formatter adds when it wraps lines.
const normalize = (code: string) =>
  code
    .split('\n')
    .filter((line) => !line.trim().startsWith('import '))
    .join('')
    .replace(/\s+/g, '')
    .replace(/,([)\]}])/g, '$1');

describe('README: redaction', () => {
  it('has its examples in this file, with their imports', () => {
    const source = readFileSync(new URL(import.meta.url), 'utf8');
    expect(examples.length).toBe(2);
    for (const example of examples) {
      expect(normalize(source)).toContain(normalize(example));
      for (const line of example.split('\n').filter((l) => l.startsWith('import '))) {
        const names = /\{ (.+) \} from '([^']+)'/.exec(line);
        for (const name of (names?.[1] ?? '').split(', '))
          expect(source).toMatch(
            new RegExp(`\\b${name}\\b[^\\n]*from '${names?.[2]}'|\\* as \\w+ from '${names?.[2]}'`),
          );
      }
    }
    // The redaction entry and the main entry hand out the same redactor.
    expect(redaction.createRedactor).toBe(createRedactor);
  });

  it('attached to the configuration, masks the secrets and leaves the settings', async () => {
    const warnings: RedactorWarning[] = [];
    const config = new ConfigProvider({
      APP_URL: 'http://localhost:8080',
      APP_NAME: 'app',
      PORT: '8080',
      DB_PASSWORD: 'correct-horse-battery',
    });
    process.on('warning', onProcessWarning);
    try {
      const redactor = createRedactor();
      const following = redactor.attach(config);
      await following.ready;
      redactor.redact('listening on http://localhost:8080 as app, db password correct-horse-battery');
      // 'listening on http://localhost:8080 as app, db password [REDACTED]'
      expect(
        redactor.redact('listening on http://localhost:8080 as app, db password correct-horse-battery'),
      ).toBe(`listening on http://localhost:8080 as app, db password ${REDACTED}`);
      await following.stop();
      // Let a process warning, if any were emitted, arrive.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onProcessWarning);
    }

    function onProcessWarning(warning: Error & { code?: string }): void {
      if (warning.code?.startsWith('SECRET_PROVIDER_'))
        warnings.push({ code: 'SHORT_SECRET', message: warning.message });
    }
  });

  it('your own predicate', async () => {
    // Everything in Vault is a secret; elsewhere, the default rules and one more name.
    const strict = createRedactor({
      secretKeys: (key, provider) =>
        provider === 'vault' || key === 'SLACK_URL' || defaultSecretKeys(key, provider),
    });
    await strict.learnFrom(new ConfigProvider({ ENDPOINT: 'https://vault.internal/v1' }, 'vault'));
    await strict.learnFrom(
      new ConfigProvider({
        SLACK_URL: 'https://hooks.slack.example/services/T0/B0/abc',
        APP_URL: 'https://app.example.com',
      }),
    );
    expect(
      strict.redact(
        'https://vault.internal/v1 https://hooks.slack.example/services/T0/B0/abc https://app.example.com',
      ),
    ).toBe(`${REDACTED} ${REDACTED} https://app.example.com`);
  });
});
