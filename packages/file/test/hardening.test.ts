// Hostile and unlucky files: links out of a secrets directory, one file reached by two paths, the
// longest file names, a directory deleted and re-created under a watch, and own writes that
// overtake a watch's re-read. Real files and real inotify.
import {
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { isSecretError, type SecretError } from '@secret-provider/core';
import { type FileProvider, parseDotenv } from '@secret-provider/file';
import { expectNoLeak, pause, record, rejection, until } from '@secret-provider/testing';
import { describe, expect, it } from 'vitest';
import { providersInTempDir } from './helpers.js';

let dir: string;
const open = providersInTempDir('file-hardening-', (made) => {
  dir = made;
});

const reveal = async (provider: FileProvider, key: string) => (await provider.get(key)).reveal();
const codeOf = (error: unknown) =>
  isSecretError(error) ? error.code : `not a SecretError: ${String(error)}`;

/** Kubernetes' layout by hand: `..data -> <target>`, `<key> -> ..data/<key>`. */
function dataLayout(secrets: string, target: string, keys: readonly string[]): void {
  symlinkSync(target, join(secrets, '..data'));
  for (const key of keys) symlinkSync(join('..data', key), join(secrets, key));
}

describe('a directory source does not follow links out of its directory', () => {
  it('refuses links to /etc/passwd and /proc/self/environ, and a ..data link that leaves, with ACCESS_DENIED', async () => {
    const secrets = join(dir, 'secrets');
    mkdirSync(secrets);
    writeFileSync(join(secrets, 'inside'), 'fine\n');
    symlinkSync('/etc/passwd', join(secrets, 'passwd'));
    symlinkSync('/proc/self/environ', join(secrets, 'environ'));
    symlinkSync('inside', join(secrets, 'alias'));
    const provider = open({ path: secrets });
    const passwd = readFileSync('/etc/passwd', 'utf8').split('\n')[0] as string;
    const errors: unknown[] = [];
    for (const key of ['passwd', 'environ']) {
      const error = await rejection(provider.get(key));
      expect(codeOf(error), key).toBe('ACCESS_DENIED');
      errors.push(error, await rejection(provider.metadata(key)));
    }
    expect(await reveal(provider, 'alias')).toBe('fine');
    expect(await provider.keys()).toEqual(['alias', 'inside']);
    // Watched: served from memory, the refusal too.
    await record(provider);
    expect(codeOf(await rejection(provider.get('passwd')))).toBe('ACCESS_DENIED');
    expect(await provider.keys()).toEqual(['alias', 'inside']);
    expectNoLeak(errors, [passwd]);

    const volume = join(dir, 'volume');
    mkdirSync(volume);
    dataLayout(volume, '/etc', ['passwd', 'hostname']);
    const k8s = open({ path: volume });
    expect(codeOf(await rejection(k8s.get('passwd')))).toBe('ACCESS_DENIED');
    expect(codeOf(await rejection(k8s.get('hosts')))).toBe('ACCESS_DENIED');
    expect(await k8s.keys()).toEqual([]);
  });

  it('follows links that stay inside (the kubelet ..data -> ..<timestamp> layout)', async () => {
    const volume = join(dir, 'volume');
    mkdirSync(join(volume, '..2026_01_01_00_00_00.123'), { recursive: true });
    writeFileSync(join(volume, '..2026_01_01_00_00_00.123', 'password'), 'pw');
    dataLayout(volume, '..2026_01_01_00_00_00.123', ['password']);
    const provider = open({ path: volume });
    expect(await reveal(provider, 'password')).toBe('pw');
    expect(await provider.keys()).toEqual(['password']);
  });

  it('allowLinksInto names an outside root whose files may be linked', async () => {
    const store = join(dir, 'store');
    const secrets = join(dir, 'secrets');
    mkdirSync(store);
    mkdirSync(secrets);
    writeFileSync(join(store, 'api'), 'from-store');
    symlinkSync(join(store, 'api'), join(secrets, 'api'));
    symlinkSync('/etc/passwd', join(secrets, 'passwd'));
    const provider = open({ path: secrets, allowLinksInto: [store] });
    expect(await reveal(provider, 'api')).toBe('from-store');
    expect(codeOf(await rejection(provider.get('passwd')))).toBe('ACCESS_DENIED');
  });
});

describe('locks key on the real path', () => {
  for (const name of ['shared.json', 'shared.env']) {
    it(`two providers reaching ${name} through a symlinked directory lose none of 40 concurrent writes`, async () => {
      mkdirSync(join(dir, 'real'));
      symlinkSync(join(dir, 'real'), join(dir, 'alias'));
      const a = open({ path: join(dir, 'real', name) });
      const b = open({ path: join(dir, 'alias', name) });
      const keys = Array.from({ length: 40 }, (_, i) => `key_${i}`);
      await Promise.all(keys.map((key, i) => (i % 2 ? a : b).set(key, `v${i}`)));
      const text = readFileSync(join(dir, 'real', name), 'utf8');
      const written = name.endsWith('.json') ? Object.keys(JSON.parse(text)) : [...parseDotenv(text).keys()];
      expect(written.sort()).toEqual([...keys].sort());
    });
  }
});

describe('directory keys are validated for what the file system accepts', () => {
  it('keys of 237 to 255 bytes of UTF-8 are written and read back; 256 bytes is INVALID_KEY up front', async () => {
    const target = join(dir, 'keys');
    const provider = open({ path: target });
    const keys = [
      'k'.repeat(237),
      'k'.repeat(250),
      'k'.repeat(255),
      `${'é'.repeat(127)}x`, // 255 bytes
      '✓'.repeat(85), // 255 bytes
    ];
    for (const key of keys) {
      expect(Buffer.byteLength(key)).toBeLessThanOrEqual(255);
      await provider.set(key, `value of ${key.length}`);
      expect(await reveal(provider, key)).toBe(`value of ${key.length}`);
    }
    expect((await provider.keys()).length).toBe(keys.length);
    for (const key of ['k'.repeat(256), `${'é'.repeat(128)}`, '✓'.repeat(86)]) {
      expect(codeOf(await rejection(provider.set(key, 'v')))).toBe('INVALID_KEY');
      expect(codeOf(await rejection(provider.get(key)))).toBe('INVALID_KEY');
    }
    expect((await provider.keys()).length).toBe(keys.length);
  });
});

describe('a watched directory deleted and re-created', () => {
  it('keeps seeing changes after the directory is re-created (same inode on ext4)', async () => {
    const target = join(dir, 'watched');
    mkdirSync(target);
    writeFileSync(join(target, 'k'), 'v0');
    const provider = open({ path: target });
    await record(provider);
    const inodes = new Set<bigint>([statSync(target, { bigint: true }).ino]);
    for (let round = 1; round <= 3; round++) {
      rmSync(target, { recursive: true });
      mkdirSync(target);
      inodes.add(statSync(target, { bigint: true }).ino);
      writeFileSync(join(target, 'k'), `v${round}-a`);
      await until(
        async () => (await reveal(provider, 'k').catch(() => '')) === `v${round}-a`,
        5_000,
        `round ${round}`,
      );
      await pause(50);
      // A write into the new directory, well after it was created: only a live watch sees it.
      writeFileSync(join(target, 'k'), `v${round}-b`);
      await until(
        async () => (await reveal(provider, 'k').catch(() => '')) === `v${round}-b`,
        5_000,
        `round ${round}, second write`,
      );
    }
    console.log(`directory re-created 3 times: ${inodes.size} distinct inode number(s)`);
  });
});

describe('an own write that overtakes a re-read', () => {
  for (const how of ['deleted', 'emptied'] as const) {
    it(`a secret ${how} outside is not served for good when own writes of other keys land during the re-read`, async () => {
      const target = join(dir, 'busy');
      mkdirSync(target);
      const provider = open({ path: target, debounceMs: 5 });
      const { events } = await record(provider);
      for (let trial = 0; trial < 8; trial++) {
        const doomed = `doomed_${trial}`;
        writeFileSync(join(target, doomed), 'doomed-value');
        await until(
          async () => (await reveal(provider, doomed).catch(() => '')) === 'doomed-value',
          5_000,
          'seen',
        );
        let writing = true;
        const writers = [0, 1, 2, 3].map(async (w) => {
          for (let i = 0; writing; i++) await provider.set(`writer_${w}`, `${trial}-${i}`);
        });
        await pause(5);
        if (how === 'deleted') unlinkSync(join(target, doomed));
        else truncateSync(join(target, doomed), 0);
        await pause(150);
        writing = false;
        await Promise.all(writers);
        const gone = async () => {
          try {
            const value = await reveal(provider, doomed);
            return how === 'emptied' && value === '';
          } catch (error) {
            return how === 'deleted' && codeOf(error) === 'NOT_FOUND';
          }
        };
        await until(gone, 2_000, `trial ${trial}: the ${how} secret is no longer served`);
      }
      const errors = events
        .filter((e) => e.type === 'error')
        .map((e) => (e.event as { error: SecretError }).error);
      expect(errors).toEqual([]);
    }, 60_000);
  }
});

describe('inherited names are ordinary keys', () => {
  it('nested JSON keys through toString, hasOwnProperty or valueOf are written and read', async () => {
    const path = join(dir, 'doc.json');
    const provider = open({ path });
    for (const key of ['toString.x', 'hasOwnProperty.y', 'valueOf', 'a.toString']) {
      await provider.set(key, `v-${key}`);
      expect(await reveal(provider, key)).toBe(`v-${key}`);
    }
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      toString: { x: 'v-toString.x' },
      hasOwnProperty: { y: 'v-hasOwnProperty.y' },
      valueOf: 'v-valueOf',
      a: { toString: 'v-a.toString' },
    });
    await provider.delete('toString.x');
    expect(codeOf(await rejection(provider.get('toString.x')))).toBe('NOT_FOUND');
    for (const key of ['__proto__', 'a.__proto__', 'constructor.x']) {
      expect(codeOf(await rejection(provider.set(key, 'v')))).toBe('INVALID_KEY');
    }
  });

  it('.env keys named __proto__, constructor, toString and hasOwnProperty are read and written', async () => {
    const path = join(dir, '.env');
    writeFileSync(path, '__proto__=p\nconstructor=c\n');
    const provider = open({ path });
    expect(await reveal(provider, '__proto__')).toBe('p');
    expect(await reveal(provider, 'constructor')).toBe('c');
    await provider.set('toString', 't');
    await provider.set('hasOwnProperty', 'h');
    await provider.set('__proto__', 'p2');
    expect(parseDotenv(readFileSync(path, 'utf8')).get('__proto__')).toBe('p2');
    expect((await provider.keys()).sort()).toEqual([
      '__proto__',
      'constructor',
      'hasOwnProperty',
      'toString',
    ]);
  });
});
