import type { Writable } from 'node:stream';

/** How a check ended: `local` (config, files, usage), `remote` (unreachable, TLS, sealed, 5xx, timeout), `denied`. */
export type Outcome = 'ok' | 'warn' | 'local' | 'remote' | 'denied' | 'unknown';

/** One line of a report: what was checked, for which provider, and how it ended. */
export interface CheckLine {
  readonly provider: string;
  readonly check: string;
  readonly outcome: Outcome;
  /** One human sentence; names and figures only, never a value. */
  readonly detail: string;
  /** How to fix a failure, when known. */
  readonly hint?: string | undefined;
  readonly latencyMs?: number | undefined;
  /** Machine-readable facts (TTL, policies, expiry dates...). */
  readonly data?: Readonly<Record<string, unknown>> | undefined;
}

/** Exit codes: 0 all passed, 1 local or usage error, 2 remote error, 3 reachable but denied. */
export const EXIT = { ok: 0, local: 1, remote: 2, denied: 3 } as const;

/** The exit code of a set of lines: a local error first, then a remote one, then a denial. */
export function exitCodeOf(lines: readonly CheckLine[]): number {
  if (lines.some((l) => l.outcome === 'local')) return EXIT.local;
  if (lines.some((l) => l.outcome === 'remote')) return EXIT.remote;
  if (lines.some((l) => l.outcome === 'denied')) return EXIT.denied;
  return EXIT.ok;
}

/** Where output goes and what the terminal can do. */
export interface Io {
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

/** Colour by `FORCE_COLOR` (any value but 0/false turns it on), else off under `NO_COLOR`, else on a TTY. */
export function colourEnabled(io: Io): boolean {
  const force = io.env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  if (io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '') return false;
  return io.stdout.isTTY === true;
}

/** A spinner only on a TTY and never under CI (CI logs keep every carriage-return frame). */
export function spinnerEnabled(io: Io): boolean {
  const ci = io.env.CI;
  return io.stdout.isTTY === true && (ci === undefined || ci === '' || ci === 'false' || ci === '0');
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const MARKS: Record<Outcome, [string, string]> = {
  ok: ['✓', '32'],
  warn: ['!', '33'],
  local: ['✗', '31'],
  remote: ['✗', '31'],
  denied: ['✗', '35'],
  unknown: ['?', '33'],
};

/**
 * Prints check lines as they complete (human form) or collects them for one JSON document
 * (`--json`, printed by {@link Reporter.finish}). A spinner names what is still running.
 */
export class Reporter {
  readonly #io: Io;
  readonly #json: boolean;
  readonly #colour: boolean;
  readonly #spinner: boolean;
  readonly #lines: CheckLine[] = [];
  readonly #running = new Set<string>();
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;
  #drawn = false;

  constructor(io: Io, options: { json: boolean }) {
    this.#io = io;
    this.#json = options.json;
    this.#colour = colourEnabled(io);
    this.#spinner = !options.json && spinnerEnabled(io);
  }

  get lines(): readonly CheckLine[] {
    return this.#lines;
  }

  /** Runs `task`, showing `label` on the spinner while it runs. */
  async track<T>(label: string, task: () => Promise<T>): Promise<T> {
    this.#running.add(label);
    this.#startSpinner();
    try {
      return await task();
    } finally {
      this.#running.delete(label);
      if (this.#running.size === 0) this.#stopSpinner();
    }
  }

  add(line: CheckLine): void {
    this.#lines.push(line);
    if (this.#json) return;
    this.#clear();
    const [mark, colour] = MARKS[line.outcome];
    const latency = line.latencyMs === undefined ? '' : ` (${Math.round(line.latencyMs)} ms)`;
    const head = `${this.#paint(mark, colour)} ${line.provider} ${line.check}: ${line.detail}${latency}`;
    this.#io.stdout.write(`${head}\n`);
    if (line.hint !== undefined && line.outcome !== 'ok')
      this.#io.stdout.write(`    ${this.#paint('hint', '2')}: ${line.hint}\n`);
    this.#draw();
  }

  /** Prints a plain line (human form only). */
  say(text: string): void {
    if (this.#json) return;
    this.#clear();
    this.#io.stdout.write(`${text}\n`);
    this.#draw();
  }

  /** Ends the report; in JSON form prints the one document. Returns the exit code. */
  finish(
    command: string,
    extra: Readonly<Record<string, unknown>> = {},
    code = exitCodeOf(this.#lines),
  ): number {
    this.#stopSpinner();
    if (this.#json) {
      const document = { command, ok: code === 0, exitCode: code, ...extra, results: this.#lines };
      this.#io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    } else if (this.#lines.length > 0) {
      const count = (outcomes: readonly Outcome[]) =>
        this.#lines.filter((l) => outcomes.includes(l.outcome)).length;
      const failed = count(['local', 'remote', 'denied']);
      const warned = count(['warn']);
      const unknown = count(['unknown']);
      const head =
        failed === 0 ? this.#paint('all checks passed', '32') : this.#paint(`${failed} failed`, '31');
      const notes = [
        ...(warned > 0 ? [`${warned} warning${warned === 1 ? '' : 's'}`] : []),
        ...(unknown > 0 ? [`${unknown} unknown`] : []),
      ];
      this.#io.stdout.write(`${[head, ...notes].join(', ')}\n`);
    }
    return code;
  }

  #paint(text: string, code: string): string {
    return this.#colour ? `\u001b[${code}m${text}\u001b[0m` : text;
  }

  #startSpinner(): void {
    if (!this.#spinner || this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.#frame = (this.#frame + 1) % FRAMES.length;
      this.#clear();
      this.#draw();
    }, 80);
    this.#timer.unref();
    this.#draw();
  }

  #stopSpinner(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#clear();
  }

  #draw(): void {
    if (!this.#spinner || this.#timer === undefined || this.#running.size === 0) return;
    this.#io.stdout.write(`${FRAMES[this.#frame]} ${[...this.#running].join(', ')}`);
    this.#drawn = true;
  }

  #clear(): void {
    if (!this.#drawn) return;
    this.#io.stdout.write('\r\u001b[2K');
    this.#drawn = false;
  }
}
