// Real etcd members for the tests: installs Debian's etcd-server/etcd-client when `etcd` is
// missing (as root), starts members on free 127.0.0.1 ports in a temporary directory, stops and
// restarts them, and removes everything after. Every wait is bounded.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const START_TIMEOUT_MS = 15_000;
const INSTALL_TIMEOUT_MS = 240_000;

/** Whether etcd can run here; `reason` says why not. Installs the packages once when missing. */
export interface EtcdAvailability {
  readonly available: boolean;
  readonly reason?: string | undefined;
}

let availability: EtcdAvailability | undefined;

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Finds `etcd` and `etcdctl`, installing Debian's packages when they are missing and this
 * process may (root). Never throws: a machine that cannot have etcd gets a reason to print.
 */
export function ensureEtcd(): EtcdAvailability {
  availability ??= findOrInstall();
  return availability;
}

function findOrInstall(): EtcdAvailability {
  if (hasCommand('etcd') && hasCommand('etcdctl')) return { available: true };
  if (process.getuid?.() !== 0) {
    return {
      available: false,
      reason: 'etcd is not installed and installing it needs root (apt-get install etcd-server etcd-client)',
    };
  }
  // Test files start in parallel: a second installer waits for the first one's lock.
  const wait = '-o DPkg::Lock::Timeout=180';
  const command = `apt-get ${wait} update && apt-get ${wait} install -y etcd-server etcd-client`;
  const install = spawnSync('sh', ['-c', `command -v etcd >/dev/null || (${command})`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: INSTALL_TIMEOUT_MS,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (install.status !== 0 || !hasCommand('etcd') || !hasCommand('etcdctl')) {
    const tail = install.stderr?.toString().trim().split('\n').slice(-2).join(' | ') ?? '';
    return {
      available: false,
      reason: `apt-get install etcd-server etcd-client failed (${install.error?.message ?? `exit ${install.status}`}${tail ? `: ${tail}` : ''})`,
    };
  }
  return { available: true };
}

/** A free TCP port on 127.0.0.1 (the kernel's choice, released before use). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** One etcd member: a child process on 127.0.0.1. */
export class EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  #args: string[];
  #process: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #stderr = '';

  constructor(name: string, clientPort: number, peerPort: number, dataDir: string, args: string[]) {
    this.name = name;
    this.clientPort = clientPort;
    this.peerPort = peerPort;
    this.dataDir = dataDir;
    this.#args = args;
  }

  /** `http://127.0.0.1:<client port>` */
  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get running(): boolean {
    return this.#process !== undefined;
  }

  /** Starts the process (again, on the same data directory after a stop). */
  start(): void {
    if (this.#process !== undefined) return;
    const child = spawn('etcd', this.#args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4_000);
    });
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.#process = child;
    running.add(child);
    child.once('exit', () => {
      running.delete(child);
      if (this.#process === child) this.#process = undefined;
    });
  }

  /** Stops the process: SIGKILL (a crash) by default, SIGTERM when asked; waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#process;
    if (child === undefined) return;
    child.kill(signal);
    const exited = this.#exited;
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  /** The last lines etcd wrote to stderr (for failure messages). */
  get log(): string {
    return this.#stderr;
  }
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Members started together as one cluster, in one temporary directory. */
export class EtcdCluster {
  readonly members: readonly EtcdMember[];
  readonly root: string;

  private constructor(members: EtcdMember[], root: string) {
    this.members = members;
    this.root = root;
  }

  /** The client endpoints of every member. */
  get endpoints(): string[] {
    return this.members.map((member) => member.endpoint);
  }

  /**
   * Starts `size` members and waits until the cluster has a leader and answers. Data lives in
   * shared memory where there is some (etcd preallocates 64 MB of WAL per member).
   */
  static async start(size = 1, options: { auth?: boolean } = {}): Promise<EtcdCluster> {
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    const root = mkdtempSync(join(base, 'secret-provider-etcd-'));
    const ports: Array<[number, number]> = [];
    const taken = new Set<number>();
    while (ports.length < size) {
      const client = await freePort();
      const peer = await freePort();
      if (client === peer || taken.has(client) || taken.has(peer)) continue;
      taken.add(client);
      taken.add(peer);
      ports.push([client, peer]);
    }
    const initialCluster = ports.map(([, peer], i) => `m${i}=http://127.0.0.1:${peer}`).join(',');
    const members = ports.map(([client, peer], i) => {
      const name = `m${i}`;
      const dataDir = join(root, name);
      return new EtcdMember(name, client, peer, dataDir, [
        `--name=${name}`,
        `--data-dir=${dataDir}`,
        `--listen-client-urls=http://127.0.0.1:${client}`,
        `--advertise-client-urls=http://127.0.0.1:${client}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=${initialCluster}`,
        '--initial-cluster-state=new',
        `--initial-cluster-token=${root.slice(-12)}`,
        '--heartbeat-interval=50',
        '--election-timeout=500',
        '--logger=zap',
        '--log-level=error',
      ]);
    });
    const cluster = new EtcdCluster(members, root);
    try {
      for (const member of members) member.start();
      await cluster.waitHealthy();
      if (options.auth) await cluster.enableAuth();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** Waits until every running member reports a healthy cluster (a leader, a quorum). */
  async waitHealthy(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const member of this.members.filter((m) => m.running)) {
      for (;;) {
        if (await healthy(member)) break;
        if (Date.now() > deadline) {
          throw new Error(`etcd member ${member.name} not healthy within ${timeoutMs} ms: ${member.log}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Runs `etcdctl` against the running members (as root once auth is on). */
  ctl(args: string[], options: { user?: string } = {}): Promise<string> {
    const endpoints = this.members
      .filter((m) => m.running)
      .map((m) => m.endpoint)
      .join(',');
    const user = options.user ?? (this.#authEnabled ? `root:${ROOT_PASSWORD}` : undefined);
    return new Promise((resolve, reject) => {
      execFile(
        'etcdctl',
        [
          `--endpoints=${endpoints}`,
          '--dial-timeout=3s',
          '--command-timeout=5s',
          ...(user ? [`--user=${user}`] : []),
          ...args,
        ],
        { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`etcdctl ${args[0]} failed: ${stderr.trim() || error.message}`));
          else resolve(stdout);
        },
      );
    });
  }

  #authEnabled = false;

  /** Turns auth on with a `root` user (password {@link ROOT_PASSWORD}). */
  async enableAuth(): Promise<void> {
    await this.ctl(['user', 'add', `root:${ROOT_PASSWORD}`]);
    await this.ctl(['auth', 'enable']);
    this.#authEnabled = true;
  }

  /** Stops every member and removes the directory (data directories included). */
  async destroy(): Promise<void> {
    await Promise.all(this.members.map((member) => member.stop()));
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The root user's password of clusters started with `auth`. */
export const ROOT_PASSWORD = 'root-test-password';

async function healthy(member: EtcdMember): Promise<boolean> {
  try {
    const response = await fetch(`${member.endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
    const body = (await response.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}
