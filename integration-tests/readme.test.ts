// The root README's example must compile against the built packages, as a user's code would.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));
const workDir = fileURLToPath(new URL('./.readme-check/', import.meta.url));

describe('README', () => {
  it('has a TypeScript example that type-checks against the published types', () => {
    const readme = readFileSync(`${root}README.md`, 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(blocks.length).toBeGreaterThan(0);
    // The example's own placeholders: the application code around the library.
    const prelude = [
      'declare function connect(url: string): void;',
      'declare function reconnect(keys: readonly string[], changes: readonly unknown[]): void;',
      'declare const logger: { info(record: unknown): void };',
      'export {};',
    ].join('\n');
    rmSync(workDir, { recursive: true, force: true });
    mkdirSync(workDir, { recursive: true });
    for (const [i, block] of blocks.entries())
      writeFileSync(`${workDir}example-${i}.ts`, `${prelude}\n${block}`);
    writeFileSync(
      `${workDir}tsconfig.json`,
      JSON.stringify({
        extends: '../../tsconfig.base.json',
        compilerOptions: {
          composite: false,
          declaration: false,
          declarationMap: false,
          emitDeclarationOnly: false,
          noEmit: true,
          target: 'ES2022',
        },
        include: ['*.ts'],
      }),
    );
    try {
      execFileSync(`${root}node_modules/.bin/tsc`, ['-p', workDir], { encoding: 'utf8', stdio: 'pipe' });
    } catch (error) {
      throw new Error(`README example does not compile:\n${(error as { stdout?: string }).stdout}`);
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  }, 60_000);
});
