// The service examples, run as a user runs them: each one a child process on a free loopback
// port, with a secret volume in a temporary directory and the stand-in database in this process.
// The database password rotates under load (0 failed requests), the log never holds a password,
// and SIGTERM closes the service cleanly while a request is in flight.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expectNoLeak, tempDir, until, waitFor } from '@secret-provider/testing';
import { afterEach, describe, expect, it } from 'vitest';

const examples = fileURLToPath(new URL('../examples/', import.meta.url));

interface StandInDatabase {
  readonly port: number;
  readonly running: number;
  readonly refused: number;
  accept(password: string): void;
  retire(password: string): void;
  sessionsWith(password: string): number;
  close(): Promise<void>;
}
interface StandInPool {
  query(sql: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
}
interface StandInModule {
  startStandInDatabase(options: { passwords: string[] }): Promise<StandInDatabase>;
  Pool: new (options: { port: number; user: string; password: string }) => StandInPool;
  AUTH_FAILED: string;
}
interface KubeletModule {
  writeSecretVolume(dir: string, files: Record<string, string>): Promise<void>;
}

const standIn = (await import(
  pathToFileURL(join(examples, 'stand-in-db/src/index.mjs')).href
)) as StandInModule;
const kubelet = (await import(pathToFileURL(join(examples, 'kubelet-volume.mjs')).href)) as KubeletModule;

const OLD_PASSWORD = 'db-pass-v1-Jq83kLmZ0wXp';
const NEW_PASSWORD = 'db-pass-v2-Tn56vBcR9sYe';

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** A GET on a new connection (no keep-alive), so that a refused connection shows as one. */
function request(port: number, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: 5_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
        } catch (error) {
          reject(error);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

interface Service {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startService(example: string, env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, [join(examples, example, 'src/server.mjs')], {
    cwd: join(examples, example),
    env: { PATH: process.env.PATH ?? '', APP_HOST: '127.0.0.1', APP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const port = await Promise.race([
    waitFor(
      () => logLines(out).find((line) => line.msg === 'listening')?.port as number | undefined,
      10_000,
      'listening',
    ),
    exited.then((code) => {
      throw new Error(`${example} exited with ${code} before listening:\n${err}`);
    }),
  ]);
  return { child, port, exited, stdout: () => out, stderr: () => err };
}

function logLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function setUp(): Promise<{ db: StandInDatabase; volume: string }> {
  const temp = tempDir('service-example-');
  cleanups.push(temp.remove);
  const volume = join(temp.dir, 'secrets');
  await kubelet.writeSecretVolume(volume, { DB_PASSWORD: OLD_PASSWORD });
  const db = await standIn.startStandInDatabase({ passwords: [OLD_PASSWORD] });
  cleanups.push(() => db.close());
  return { db, volume };
}

describe.each(['express-service', 'fastify-service'])('examples/%s', (example) => {
  it('serves, follows a password rotation without a failed request, logs no password, closes cleanly', async () => {
    const { db, volume } = await setUp();
    const service = await startService(example, {
      SECRETS_DIR: volume,
      APP_DB_PORT: String(db.port),
      APP_LOG_LEVEL: 'debug',
    });

    const health = await request(service.port, '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: 'ok',
      db: { ok: true, pool: 1 },
      secrets: {
        DB_PASSWORD: { servedBy: 'secret-volume', providers: { env: 'missing', 'secret-volume': 'serving' } },
        DB_HOST: { servedBy: 'defaults' },
        DB_PORT: { servedBy: 'env', providers: { defaults: 'shadowed' } },
      },
    });

    // Requests all through the rotation, four at a time.
    let stop = false;
    let ok = 0;
    const failures: unknown[] = [];
    const pools = new Set<unknown>();
    const worker = async (n: number) => {
      while (!stop) {
        try {
          const reply = await request(service.port, n === 0 ? '/slow?seconds=0.05' : '/time');
          if (reply.status === 200) {
            ok++;
            pools.add(reply.body.pool);
          } else failures.push(reply);
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));

    // Rotation as a dual-password scheme does it: the database accepts the new password, the
    // secret rotates (the kubelet's atomic switch), the service switches pools, the old
    // password is retired.
    await until(() => ok >= 20, 5_000, 'requests before the rotation');
    db.accept(NEW_PASSWORD);
    await kubelet.writeSecretVolume(volume, { DB_PASSWORD: NEW_PASSWORD });
    await until(() => pools.has(2), 10_000, 'requests served by the new pool');
    await until(() => db.sessionsWith(OLD_PASSWORD) === 0, 5_000, 'the old pool drained and closed');
    db.retire(OLD_PASSWORD);
    const afterRetire = ok;
    await until(() => ok >= afterRetire + 20, 5_000, 'requests after the old password was retired');
    stop = true;
    await load;

    expect(failures).toEqual([]);
    expect(db.sessionsWith(NEW_PASSWORD)).toBeGreaterThan(0);
    // The database really refuses the old password now.
    const stale = new standIn.Pool({ port: db.port, user: 'app', password: OLD_PASSWORD });
    await expect(stale.query('select 1')).rejects.toMatchObject({ code: standIn.AUTH_FAILED });
    await stale.end();
    expect((await request(service.port, '/healthz')).body).toMatchObject({ status: 'ok', db: { pool: 2 } });

    // SIGTERM with a request in flight: it finishes, new connections are refused, exit code 0.
    const inFlight = request(service.port, '/slow?seconds=0.4');
    await until(() => db.running > 0, 5_000, 'the slow query running');
    service.child.kill('SIGTERM');
    await until(() => service.stdout().includes('"msg":"closing'), 5_000, 'closing');
    await expect(request(service.port, '/time')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await inFlight).toMatchObject({ status: 200, body: { slept: true } });
    expect(await service.exited).toBe(0);

    const lines = logLines(service.stdout());
    expect(lines.at(-1)?.msg).toBe('closed');
    expect(
      lines.filter((line) => line.msg === 'database pool switched to the rotated password'),
    ).toHaveLength(1);
    // The debug lines that carry the pool's options (with the password) were written, masked.
    const opened = lines.filter((line) => line.msg === 'opening a database pool');
    expect(opened.length).toBeGreaterThanOrEqual(2);
    for (const line of opened) expect(line.options).toMatchObject({ password: '[REDACTED]' });
    expectNoLeak([service.stdout(), service.stderr()], [OLD_PASSWORD, NEW_PASSWORD], { encodings: true });
    expect(service.stderr()).toBe('');
  }, 60_000);

  it('refuses to start without a database password, naming the field and no value', async () => {
    const { db } = await setUp();
    const service = spawn(process.execPath, [join(examples, example, 'src/server.mjs')], {
      env: {
        PATH: process.env.PATH ?? '',
        SECRETS_DIR: join(examples, 'no-such-volume'),
        APP_DB_PORT: String(db.port),
        APP_PORT: 'not-a-port',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    service.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const code = await new Promise((resolve) => service.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('settings "service": cannot start, 2 problems');
    expect(stderr).toMatch(/dbPassword \(key "DB_PASSWORD".*MISSING/);
    expect(stderr).toMatch(/ port \(key "PORT", provider "chain"\): invalid_type/);
    expect(stderr).not.toContain('not-a-port');
  }, 30_000);
});

describe('examples/*-service', () => {
  it('share their framework-independent files unchanged, so a fix in one is made in both', () => {
    for (const file of ['config.mjs', 'db.mjs', 'health.mjs']) {
      const express = readFileSync(join(examples, 'express-service/src', file), 'utf8');
      expect(readFileSync(join(examples, 'fastify-service/src', file), 'utf8'), file).toBe(express);
    }
  });
});
