// The packages as a stranger meets them: the release tarballs (`scripts/pack.mjs`, what
// `pnpm run pack` writes) installed with npm into a fresh application outside the workspace,
// type-checked under `moduleResolution: nodenext` and `bundler` with the workspace's TypeScript,
// bundled by esbuild to one ESM file, and run compiled and bundled on the Node.js running this
// test (20 in CI) and on Node.js 24 (npm's node@24 package, see scripts/node24.mjs), where the
// TypeScript source also runs as it is. Needs the build (as `pnpm verify` runs it) and npm's
// registry or cache for the third-party dependencies.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = fileURLToPath(new URL('./stranger-app/', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/** The README's recipe for bundling CommonJS dependencies into an ESM file. */
const REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

const ENV_TOKEN = 'stranger-env-token-c0de51';
const DOTENV_SMTP = 'stranger-dotenv-smtp-a11e';
const appSource = readFileSync(join(fixture, 'src', 'app.ts'), 'utf8');
/** Every value the app can see: the ones it embeds and the ones it is given. */
const VALUES = [...appSource.matchAll(/'(stranger-[a-z0-9-]+)'/g)].map((m) => m[1] as string);
VALUES.push(ENV_TOKEN, DOTENV_SMTP);
/** Parts of values too: a value must not leak in pieces either. */
const PARTS = ['c0de51', 'a11e', '5e1f', '77ac', '9b02', '4d2a', '31f0'];

/** A shell without the workspace in it: no npm/pnpm script variables, no workspace `.bin` on PATH. */
const strangerEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([name]) => !/^(npm_|pnpm_|PNPM_|NODE_OPTIONS$|VITEST|TEST$)/i.test(name),
  ),
);
strangerEnv.PATH = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => !dir.startsWith(root))
  .join(delimiter);

/** Node 24 for the second half, or the reason there is none (printed, and in the test's name). */
const node24 = ((): { binary: string } | { reason: string } => {
  const result = spawnSync(process.execPath, [join(root, 'scripts', 'node24.mjs')], {
    encoding: 'utf8',
    timeout: 200_000,
  });
  if (result.status === 0) return { binary: result.stdout.trim() };
  const reason = (result.stderr || result.error?.message || 'no reason given').trim();
  console.warn(`stranger app: the Node.js 24 runs are skipped: ${reason}`);
  return { reason };
})();

const timings: string[] = [];
function timed<T>(what: string, work: () => T): T {
  const started = performance.now();
  try {
    return work();
  } finally {
    timings.push(`${what} ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

let app = '';
let bundles = '';
let tarballs: { name: string; version: string; file: string }[] = [];

beforeAll(() => {
  app = mkdtempSync(join(tmpdir(), 'stranger-app-'));
  // Outside the app, so that a bundle that still needed node_modules would fail here.
  bundles = mkdtempSync(join(tmpdir(), 'stranger-bundle-'));
  tarballs = JSON.parse(
    timed('pack', () =>
      execFileSync(
        process.execPath,
        [join(root, 'scripts', 'pack.mjs'), '--out', join(app, 'tarballs'), '--json'],
        {
          cwd: root,
          encoding: 'utf8',
        },
      ),
    ),
  );
  const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify(
      {
        name: 'stranger-app',
        private: true,
        type: 'module',
        dependencies: Object.fromEntries(
          tarballs.map(({ name, file }) => [name, `file:./tarballs/${file.split(/[\\/]/).pop()}`]),
        ),
        devDependencies: { '@types/node': rootManifest.devDependencies['@types/node'] },
      },
      null,
      2,
    ),
  );
  cpSync(join(fixture, 'src'), join(app, 'src'), { recursive: true });
  writeFileSync(
    join(app, '.env'),
    `# read by EnvProvider({ files: ['.env'] })\nSTRANGER_SMTP_PASSWORD="${DOTENV_SMTP}"\n`,
  );
  const compilerOptions = {
    target: 'ES2022',
    lib: ['ES2023', 'ESNext.Disposable'],
    types: ['node'],
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    verbatimModuleSyntax: true,
    skipLibCheck: false,
  };
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        ...compilerOptions,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        rootDir: 'src',
        outDir: 'dist',
      },
      include: ['src'],
    }),
  );
  writeFileSync(
    join(app, 'tsconfig.bundler.json'),
    JSON.stringify({
      compilerOptions: { ...compilerOptions, module: 'Preserve', moduleResolution: 'Bundler', noEmit: true },
      include: ['src'],
    }),
  );
  timed('npm install', () =>
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: app,
      env: strangerEnv,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 240_000,
    }),
  );
}, 300_000);

afterAll(() => {
  console.log(`stranger app: ${timings.join(', ')}`);
  // STRANGER_APP_KEEP=1 keeps the app and its bundles to look at.
  if (process.env.STRANGER_APP_KEEP) console.log(`stranger app kept: ${app} ${bundles}`);
  else for (const dir of [app, bundles]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a program of the app with a binary, as the app's user would, and what it printed. */
function run(node: string, args: string[]) {
  const result = spawnSync(node, args, {
    cwd: app,
    env: { ...strangerEnv, STRANGER_API_TOKEN: ENV_TOKEN },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return {
    status: result.status,
    stdout: result.stdout ?? '',
    stderr: result.stderr ?? '',
    error: result.error,
  };
}

/** The app ran to its end, printed exactly what it should, and no value or part of one. */
function expectRedactedRun(result: ReturnType<typeof run>, major: number) {
  for (const value of [...VALUES, ...PARTS]) {
    expect(result.stdout, value).not.toContain(value);
    expect(result.stderr, value).not.toContain(value);
  }
  expect(result.error).toBeUndefined();
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
  const [version, ...lines] = result.stdout.trimEnd().split('\n');
  expect(version).toMatch(new RegExp(`^node ${major}\\.`));
  expect(lines).toEqual([
    'API_TOKEN from env: [REDACTED] Secret([REDACTED]) {"API_TOKEN":"[REDACTED]"}',
    'DB_PASSWORD from defaults: [REDACTED] Secret([REDACTED]) {"DB_PASSWORD":"[REDACTED]"}',
    'SMTP_PASSWORD from env: [REDACTED] Secret([REDACTED]) {"SMTP_PASSWORD":"[REDACTED]"}',
    'MISSING_KEY: NOT_FOUND',
    'inline: [REDACTED], redacted label true',
    'rotated: DB_PASSWORD',
    'DB_PASSWORD now [REDACTED], changed true',
    'done',
  ]);
}

const tscRun = (project: string) =>
  spawnSync(process.execPath, [tsc, '-p', join(app, project)], {
    cwd: app,
    encoding: 'utf8',
    timeout: 120_000,
  });

/** Whether the installed env package still loads dotenv, whose CommonJS `require('fs')` esbuild cannot turn into ESM. */
const envLoadsDotenv = () =>
  'dotenv' in
  (JSON.parse(readFileSync(join(app, 'node_modules', '@secret-provider', 'env', 'package.json'), 'utf8'))
    .dependencies ?? {});

describe("a stranger's app, installed from the release tarballs with npm", () => {
  it('gets every public package, each once, with the versions of its siblings and no workspace: range', () => {
    const installed = readdirSync(join(app, 'node_modules', '@secret-provider')).sort();
    expect(installed).toEqual(tarballs.map(({ name }) => name.replace('@secret-provider/', '')).sort());
    expect(installed.length).toBeGreaterThanOrEqual(10);
    for (const name of installed) {
      const dir = join(app, 'node_modules', '@secret-provider', name);
      const text = readFileSync(join(dir, 'package.json'), 'utf8');
      expect(text, name).not.toContain('workspace:');
      // One copy of each package in the tree: npm used the tarballs for the siblings' ranges too.
      expect(existsSync(join(dir, 'node_modules', '@secret-provider')), `${name} has its own copies`).toBe(
        false,
      );
    }
  });

  it('type-checks and compiles under moduleResolution nodenext', () => {
    const result = timed('tsc nodenext', () => tscRun('tsconfig.json'));
    expect(`${result.stdout}${result.stderr}`).toBe('');
    expect(result.status).toBe(0);
    expect(existsSync(join(app, 'dist', 'app.js'))).toBe(true);
  }, 120_000);

  it('type-checks under moduleResolution bundler', () => {
    const result = timed('tsc bundler', () => tscRun('tsconfig.bundler.json'));
    expect(`${result.stdout}${result.stderr}`).toBe('');
    expect(result.status).toBe(0);
  }, 120_000);

  it('bundles to one ESM file with esbuild, with and without the createRequire banner', async () => {
    const started = performance.now();
    for (const [outfile, banner] of [
      ['app.mjs', { js: REQUIRE_BANNER }],
      ['app-without-banner.mjs', {}],
    ] as const) {
      const result = await build({
        absWorkingDir: app,
        entryPoints: [join(app, 'src', 'app.ts')],
        outfile: join(bundles, outfile),
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        banner,
        logLevel: 'silent',
      });
      expect(result.errors).toEqual([]);
    }
    timings.push(`esbuild ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const bundled = readFileSync(join(bundles, 'app.mjs'), 'utf8');
    // The packages are inside the bundle, not imported from node_modules at run time.
    expect(bundled).not.toMatch(/from\s*["']@secret-provider\//);
    expect(bundled).toContain('[REDACTED]');
  }, 60_000);

  const runtimes: {
    label: string;
    binary: string | undefined;
    major: number;
    skipped?: string | undefined;
  }[] = [
    {
      label: `Node.js ${process.versions.node}`,
      binary: process.execPath,
      major: Number(process.versions.node.split('.')[0]),
    },
    'binary' in node24
      ? { label: 'Node.js 24', binary: node24.binary, major: 24 }
      : { label: 'Node.js 24', binary: undefined, major: 24, skipped: node24.reason.split('\n')[0] },
  ];
  for (const { label, binary, major, skipped } of runtimes) {
    const title = skipped ? `runs on ${label} (skipped: ${skipped})` : `runs on ${label}`;
    describe.skipIf(binary === undefined)(title, () => {
      const node = binary ?? '';

      it('compiled by tsc', () => {
        expectRedactedRun(
          timed(`run ${major} compiled`, () => run(node, ['dist/app.js'])),
          major,
        );
      });

      it("bundled by esbuild with the README's banner", () => {
        expectRedactedRun(
          timed(`run ${major} bundled`, () => run(node, [join(bundles, 'app.mjs')])),
          major,
        );
      });

      it('bundled by esbuild without the banner', () => {
        const result = run(node, [join(bundles, 'app-without-banner.mjs')]);
        if (envLoadsDotenv()) {
          // The limitation the README's recipe works around: dotenv (CommonJS) requires `fs`,
          // which an ESM bundle cannot. Once env reads .env files without dotenv, this runs.
          expect(result.status).not.toBe(0);
          expect(result.stderr).toContain('Dynamic require of "fs" is not supported');
        } else {
          expectRedactedRun(result, major);
        }
      });

      if (major >= 24) {
        it('as TypeScript source, with native await using', () => {
          expectRedactedRun(
            timed(`run ${major} source`, () => run(node, ['src/app.ts'])),
            major,
          );
        });
      }
    });
  }
});
