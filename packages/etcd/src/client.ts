import { InvalidConfigError } from '@secret-provider/core';
import { backoffDelay, sanitizeCause } from '@secret-provider/core/adapter';
import type { Etcd3, IOptions } from 'etcd3';

// etcd3 loads gRPC and compiles etcd's protocol files when it is imported (about 150 ms). Only
// types are imported statically (erased at build time); the module loads on the first call that
// needs a client, so importing this package loads nothing of etcd3.

export type Etcd3Module = typeof import('etcd3');

/** How long a host that failed is skipped while another one may answer. */
const HOST_COOLDOWN_MS = 1_000;

let loading: Promise<Etcd3Module> | undefined;
let loaded: Etcd3Module | undefined;

/** `etcd3`, loaded once, on first use. */
export function loadEtcd3(provider: string): Promise<Etcd3Module> {
  loading ??= import('etcd3').then(
    (module) => {
      // etcd3 is CommonJS: its exports are the named exports and, for some loaders, `default`.
      loaded = (module as Etcd3Module & { default?: Etcd3Module }).default ?? module;
      return loaded;
    },
    (error: unknown) => {
      loading = undefined;
      throw new InvalidConfigError(
        { provider, cause: sanitizeCause(error, 'import of etcd3 failed') },
        'cannot load etcd3: install it next to @secret-provider/etcd',
      );
    },
  );
  return loading;
}

/** The module when it has been loaded (error mapping needs its classes), else `undefined`. */
export function loadedEtcd3(): Etcd3Module | undefined {
  return loaded;
}

/**
 * The back-off of etcd3's watch reconnections in the shape its `faultHandling.watchBackoff`
 * takes (cockatiel's `IBackoff`), computed by core's one back-off formula.
 */
export class WatchReconnectBackoff {
  readonly duration: number;
  readonly #failures: number;
  readonly #base: number;
  readonly #max: number;

  constructor(base: number, max: number, failures = 0) {
    this.#failures = failures;
    this.#base = base;
    this.#max = max;
    this.duration = failures === 0 ? 0 : backoffDelay(failures, { base, max });
  }

  next(): WatchReconnectBackoff {
    return new WatchReconnectBackoff(this.#base, this.#max, this.#failures + 1);
  }
}

/** A host skipped for being in its cool-down; etcd3 then tries the next host. */
class HostCoolingDown extends Error {
  constructor() {
    super('etcd host skipped after a recent failure');
    this.name = 'HostCoolingDown';
  }
}

/**
 * The per-host policy etcd3 runs each call through (`faultHandling.host`, cockatiel's shape: only
 * `execute` is used). A host that failed is skipped for `cooldownMs` while another host is not
 * cooling down; the last ones are always tried. etcd3's default, a circuit breaker open for 5 s
 * after three failures, kept a single-member cluster unreachable for 5 s after it came back.
 */
export class HostGate {
  readonly #group: HostGate[];
  readonly #cooldownMs: number;
  readonly #recoverable: (error: unknown) => boolean;
  #until = 0;

  constructor(group: HostGate[], cooldownMs: number, recoverable: (error: unknown) => boolean) {
    this.#group = group;
    this.#cooldownMs = cooldownMs;
    this.#recoverable = recoverable;
    group.push(this);
  }

  cooling(now: number): boolean {
    return now < this.#until;
  }

  async execute<T>(fn: () => Promise<T> | T): Promise<T> {
    const now = Date.now();
    if (this.cooling(now) && this.#group.some((gate) => gate !== this && !gate.cooling(now))) {
      throw new HostCoolingDown();
    }
    try {
      const result = await fn();
      this.#until = 0;
      return result;
    } catch (error) {
      if (this.#recoverable(error)) this.#until = Date.now() + this.#cooldownMs;
      throw error;
    }
  }
}

export interface ClientSettings {
  readonly hosts: readonly string[];
  readonly auth?: { readonly username: string; readonly password: string } | undefined;
  readonly tls?: IOptions['credentials'] | undefined;
  readonly requestTimeoutMs: number;
  readonly watchBackoff: { readonly base: number; readonly max: number };
}

/** A new etcd3 client. Every unary call (the auth exchange too) gets the request deadline. */
export function createClient(etcd: Etcd3Module, settings: ClientSettings): Etcd3 {
  const deadline = () => ({ deadline: Date.now() + settings.requestTimeoutMs });
  const gates: HostGate[] = [];
  const recoverable = (error: unknown) =>
    typeof error === 'object' && error !== null && etcd.isRecoverableError(error as Error);
  const options: IOptions = {
    hosts: [...settings.hosts],
    ...(settings.tls === undefined ? {} : { credentials: settings.tls }),
    ...(settings.auth === undefined
      ? {}
      : {
          auth: {
            username: settings.auth.username,
            password: settings.auth.password,
            callOptions: deadline,
          },
        }),
    defaultCallOptions: (context) => (context.isStream ? {} : deadline()),
    faultHandling: {
      host: () =>
        new HostGate(gates, HOST_COOLDOWN_MS, recoverable) as unknown as ReturnType<
          NonNullable<NonNullable<IOptions['faultHandling']>['host']>
        >,
      // The client takes `next()` for its first wait: base/2 to base, then doubling to max.
      watchBackoff: new WatchReconnectBackoff(
        settings.watchBackoff.base,
        settings.watchBackoff.max,
      ) as unknown as NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>,
    },
  };
  return new etcd.Etcd3(options);
}
