// The examples of the adapter author's guide and of these READMEs must compile, as an author's
// code would, so they cannot drift from the API.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const workDir = fileURLToPath(new URL('./.docs-check/', import.meta.url));

/** The placeholders each document's examples assume: the author's own code around the library. */
const DOCUMENTS: ReadonlyArray<readonly [string, string]> = [
  [
    'docs/writing-a-provider.md',
    `declare const MyProvider: new (options?: { pollInterval?: number; pollJitter?: number }) =>
  import('@secret-provider/core').SecretProvider;`,
  ],
  [
    'packages/conformance/README.md',
    `interface Client { quit(): Promise<void>; failNextCommandWith(error: Error): void; pointAt(address: string): Promise<void> }
declare function startClient(): Promise<Client>;
declare const MyProvider: new (options: { client: Client; pollInterval: number }) =>
  import('@secret-provider/core').SecretProvider;
declare function writeDirectly(key: string, value: string): Promise<void>;
declare function deleteDirectly(key: string): Promise<void>;
declare function readDirectly(key: string): Promise<string | undefined>;
declare const realAddress: string;`,
  ],
  ['packages/adapter-template/README.md', ''],
];

it('compiles every TypeScript example of the guide and of the conformance and template READMEs', () => {
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  let count = 0;
  for (const [document, prelude] of DOCUMENTS) {
    const text = readFileSync(`${root}${document}`, 'utf8');
    const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(blocks.length, document).toBeGreaterThan(0);
    for (const block of blocks) {
      // Imports first, as a module requires; the placeholders after them.
      const lines = block.split('\n');
      const imports = lines.filter((line) => line.startsWith('import '));
      const rest = lines.filter((line) => !line.startsWith('import '));
      writeFileSync(
        `${workDir}example-${count++}.ts`,
        [...imports, prelude, 'export {};', ...rest].join('\n'),
      );
    }
  }
  writeFileSync(
    `${workDir}tsconfig.json`,
    JSON.stringify({
      extends: '../../../../tsconfig.base.json',
      compilerOptions: {
        composite: false,
        declaration: false,
        declarationMap: false,
        emitDeclarationOnly: false,
        noEmit: true,
        noUnusedLocals: false,
        customConditions: ['@secret-provider/source'],
      },
      include: ['*.ts'],
    }),
  );
  try {
    execFileSync(`${root}node_modules/.bin/tsc`, ['-p', workDir], { encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    throw new Error(`an example does not compile:\n${(error as { stdout?: string }).stdout}`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}, 60_000);
