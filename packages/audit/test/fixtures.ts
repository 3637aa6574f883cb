// What the audit package's tests share: a sink that keeps records in memory, and clean-up steps
// run after each test (last registered first).
import type { AuditRecord, AuditSink } from '@secret-provider/audit';
import { afterEach } from 'vitest';

export function memorySink(): AuditSink & { records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  return { records, write: (r) => void records.push(r) };
}

/** Registers an `afterEach` that runs the steps given to the returned function, newest first. */
export function cleanupAfterEach(): (step: () => unknown) => void {
  let steps: (() => unknown)[] = [];
  afterEach(async () => {
    const due = steps.reverse();
    steps = [];
    for (const step of due) await step();
  });
  return (step) => void steps.push(step);
}
