// Fleet load on one Key Vault: 500 instances x 20 secrets, each instance a real
// AzureKeyVaultProvider (its cache, its watch loop, its jitter) over an in-process vault that
// counts every transaction, on a simulated clock. Key Vault throttles at 4,000 transactions per
// 10 s per vault; the goal is to stay under half of that at start-up and in steady state.
//
//   node --expose-gc benchmarks/azure-fleet.bench.mjs
//
// The model, stated so the figures can be judged:
// - Each instance reads 4 "boot" secrets when it starts (to connect to its database, …); the
//   other 16 are read lazily, on first use. Uses of secret k arrive at random (Poisson) with a
//   mean interval of 10 s x 1.35^k (10 s for the hottest, ~50 min for the coldest).
// - Instances start spread over a deployment window: 0 s (all at once), 60 s (a fleet-wide
//   restart) or 300 s (a rolling deployment).
// - Provider defaults: cache TTL 1 h shortened at random by up to 10 %, watch poll every 30 s
//   shortened at random by up to 10 % (the first poll anywhere in the first 30 s). Every
//   `rotated` event drops the key from the cache, so the next use reads it again.
// - One secret rotates out of band every 10 minutes.
// - The vault answers after 30 ms. Every request counts: value reads, list pages, version lists.
// - Baseline, same run: eager loading (all 20 secrets at start) and no jitter (TTL and poll
//   interval exact), which keeps a fleet in lock-step.
import { AzureKeyVaultProvider } from '@secret-provider/azure';
import { createEmitter } from '@secret-provider/core';
import { ratio, report } from './lib/harness.mjs';

const INSTANCES = Number(process.env.INSTANCES ?? 500);
const SECRETS = 20;
const BOOT_SECRETS = 4;
const HOURS = Number(process.env.HOURS ?? 1.5);
/** Uses of secrets are simulated on a 100 ms grid: finer than any 10 s window needs, far cheaper. */
const TICK_MS = 100;
const LATENCY_MS = 30;
const ROTATE_EVERY_MS = 10 * 60_000;
const BUDGET_PER_10S = 4_000;
const GOAL = BUDGET_PER_10S / 2;

// ---- a simulated clock and timers -------------------------------------------------------------

/** A binary heap of timers ordered by due time, then creation. */
class TimerHeap {
  items = [];
  push(timer) {
    const a = this.items;
    a.push(timer);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }
  peek() {
    return this.items[0];
  }
  pop() {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
  get size() {
    return this.items.length;
  }
}
const before = (x, y) => x.time < y.time || (x.time === y.time && x.seq < y.seq);

const realSetImmediate = setImmediate;
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realDateNow = Date.now;
const realRandom = Math.random;

/**
 * Replaces setTimeout/clearTimeout, Date.now and Math.random for the length of a run, so the
 * providers' own timers (watch polls, jitter) run on simulated time and a seeded random source.
 */
class Simulation {
  now = Date.UTC(2026, 0, 1);
  heap = new TimerHeap();
  seq = 0;
  random;

  constructor(seed) {
    let state = seed >>> 0;
    this.random = () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  at(time, fn) {
    const timer = {
      time: Math.max(time, this.now),
      seq: this.seq++,
      fn,
      cancelled: false,
      unref: () => timer,
      ref: () => timer,
      hasRef: () => false,
      [Symbol.toPrimitive]: () => timer.seq,
    };
    this.heap.push(timer);
    return timer;
  }

  install() {
    globalThis.setTimeout = (fn, ms = 0, ...args) =>
      this.at(this.now + Math.max(0, Number(ms) || 0), () => fn(...args));
    globalThis.clearTimeout = (timer) => {
      if (timer && typeof timer === 'object') timer.cancelled = true;
    };
    Date.now = () => this.now;
    Math.random = this.random;
  }

  uninstall() {
    globalThis.setTimeout = realSetTimeout;
    globalThis.clearTimeout = realClearTimeout;
    Date.now = realDateNow;
    Math.random = realRandom;
  }

  /** Runs every timer due up to `until`, letting promise chains settle between instants. */
  async run(until) {
    while (this.heap.size > 0 && this.heap.peek().time <= until) {
      const time = this.heap.peek().time;
      this.now = time;
      while (this.heap.size > 0 && this.heap.peek().time === time) {
        const timer = this.heap.pop();
        if (!timer.cancelled) timer.fn();
      }
      await new Promise((resolve) => realSetImmediate(resolve));
    }
    this.now = until;
  }

  exponential(mean) {
    return -Math.log(1 - this.random()) * mean;
  }
}

// ---- an in-process vault that counts transactions ------------------------------------------------

class CountingVault {
  /** Transactions per simulated second, by kind. */
  perSecond = new Map();
  totals = { get: 0, list: 0, versions: 0 };
  secrets = new Map();

  constructor(sim, start) {
    this.sim = sim;
    this.start = start;
    for (let k = 0; k < SECRETS; k++) this.#write(`SECRET-${k}`, start - 86_400_000);
  }

  rotate(name) {
    this.#write(name, this.sim.now);
  }

  #write(name, time) {
    const versions = this.secrets.get(name) ?? [];
    versions.push({
      version: `${name}-v${versions.length + 1}`.toLowerCase(),
      created: Math.floor(time / 1000) * 1000,
    });
    this.secrets.set(name, versions);
  }

  async #transaction(kind) {
    await new Promise((resolve) => setTimeout(resolve, LATENCY_MS));
    const second = Math.floor((this.sim.now - this.start) / 1000);
    this.perSecond.set(second, (this.perSecond.get(second) ?? 0) + 1);
    this.totals[kind]++;
  }

  #properties(name, v, withVersion) {
    return {
      name,
      vaultUrl: 'https://fleet.vault.azure.net',
      version: withVersion ? v.version : undefined,
      enabled: true,
      createdOn: new Date(v.created),
      updatedOn: new Date(v.created),
    };
  }

  /** The subset of SecretClient the provider uses. */
  client() {
    const vault = this;
    const pages = (kind, items) => ({
      byPage: async function* ({ maxPageSize = 25 } = {}) {
        for (let i = 0; i === 0 || i < items.length; i += maxPageSize) {
          await vault.#transaction(kind);
          yield items.slice(i, i + maxPageSize);
        }
      },
    });
    return {
      vaultUrl: 'https://fleet.vault.azure.net',
      async getSecret(name, options = {}) {
        await vault.#transaction('get');
        const versions = vault.secrets.get(name);
        const v = options.version ? versions.find((x) => x.version === options.version) : versions.at(-1);
        return { name, value: `value-of-${v.version}`, properties: vault.#properties(name, v, true) };
      },
      listPropertiesOfSecrets() {
        return pages(
          'list',
          [...vault.secrets].map(([name, versions]) => vault.#properties(name, versions.at(-1), false)),
        );
      },
      listPropertiesOfSecretVersions(name) {
        return pages(
          'versions',
          vault.secrets.get(name).map((v) => vault.#properties(name, v, true)),
        );
      },
    };
  }

  /** Highest number of transactions in any 10 s window starting in [from, to) seconds. */
  peak(from, to) {
    let best = 0;
    for (let s = from; s < to; s++) {
      let sum = 0;
      for (let i = s; i < s + 10; i++) sum += this.perSecond.get(i) ?? 0;
      best = Math.max(best, sum);
    }
    return best;
  }

  mean(from, to) {
    let sum = 0;
    for (let s = from; s < to; s++) sum += this.perSecond.get(s) ?? 0;
    return (sum / (to - from)) * 10;
  }
}

// ---- one run -----------------------------------------------------------------------------------------

async function simulate({ windowMs, spread }) {
  const sim = new Simulation(42);
  sim.install();
  try {
    const start = sim.now;
    const vault = new CountingVault(sim, start);
    const client = vault.client();
    const providers = [];
    const end = start + HOURS * 3_600_000;
    const meanInterval = (k) => 10_000 * 1.35 ** k;
    for (let i = 0; i < INSTANCES; i++) {
      const startAt = start + (windowMs === 0 ? 0 : sim.random() * windowMs);
      sim.at(startAt, () => {
        const provider = new AzureKeyVaultProvider({
          name: `instance-${i}`,
          client,
          cache: { now: () => sim.now, random: sim.random, jitter: spread ? 0.1 : 0 },
          pollInterval: 30_000,
          pollJitter: spread ? 0.1 : 0,
          onWarning: () => {},
        });
        providers.push(provider);
        provider.watch(createEmitter());
        const next = (k) => Math.ceil((sim.now + sim.exponential(meanInterval(k))) / TICK_MS) * TICK_MS;
        const use = (k) => {
          provider.get(`SECRET_${k}`).catch(() => {});
          sim.at(next(k), () => use(k));
        };
        for (let k = 0; k < SECRETS; k++) {
          if (!spread || k < BOOT_SECRETS) use(k);
          else sim.at(next(k), () => use(k));
        }
      });
    }
    for (let t = start + ROTATE_EVERY_MS, n = 0; t < end; t += ROTATE_EVERY_MS, n++) {
      sim.at(t, () => vault.rotate(`SECRET-${n % SECRETS}`));
    }
    const wall = performance.now();
    await sim.run(end);
    // Closing waits for polls in flight, which need simulated time to finish.
    const closing = Promise.all(providers.map((provider) => provider.close()));
    await sim.run(end + 60_000);
    await closing;
    const startupEnd = Math.ceil((windowMs + 10 * 60_000) / 1000);
    const steadyFrom = Math.ceil((windowMs + 15 * 60_000) / 1000);
    const seconds = Math.floor((end - start) / 1000);
    return {
      startupPeak: vault.peak(0, startupEnd),
      steadyPeak: vault.peak(steadyFrom, seconds - 10),
      steadyMean: vault.mean(steadyFrom, seconds),
      totals: vault.totals,
      wallSeconds: (performance.now() - wall) / 1000,
    };
  } finally {
    sim.uninstall();
  }
}

// ---- the runs ------------------------------------------------------------------------------------------

const rows = [];
const checks = [];
for (const windowMs of [0, 60_000, 300_000]) {
  const ours = await simulate({ windowMs, spread: true });
  const baseline = await simulate({ windowMs, spread: false });
  for (const [label, r] of [
    ['provider defaults (lazy, jitter)', ours],
    ['baseline (eager, no jitter)', baseline],
  ]) {
    rows.push({
      'start window': `${windowMs / 1000} s`,
      run: label,
      'start-up peak /10 s': r.startupPeak,
      'steady peak /10 s': r.steadyPeak,
      'steady mean /10 s': Number(r.steadyMean.toFixed(1)),
      'value reads': r.totals.get,
      'list pages': r.totals.list,
      'version lists': r.totals.versions,
      'wall s': Number(r.wallSeconds.toFixed(1)),
    });
  }
  checks.push({ windowMs, ours, baseline });
}
report(
  `${INSTANCES} instances x ${SECRETS} secrets, one vault, ${HOURS} simulated hours (transactions)`,
  rows,
);
for (const { windowMs, ours, baseline } of checks) {
  const window = `start window ${windowMs / 1000} s`;
  const ok = (value) => (value <= GOAL ? 'ok' : 'MISSED');
  console.log(
    `${window}: start-up peak ${ours.startupPeak} /10 s (goal <= ${GOAL}) ${ok(ours.startupPeak)}; ` +
      `steady peak ${ours.steadyPeak} /10 s (goal <= ${GOAL}) ${ok(ours.steadyPeak)}; ` +
      `start-up peak vs baseline ${ratio(ours.startupPeak / baseline.startupPeak, 1)}; ` +
      `steady peak vs baseline ${ratio(ours.steadyPeak / baseline.steadyPeak, 1)}`,
  );
}
