import { withTimeout } from '@secret-provider/core/adapter';
import { describe, expect, it } from 'vitest';

describe('withTimeout', () => {
  it('lets many reads share its signal without a MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const answer = await withTimeout(async (signal) => {
        const listeners = Array.from({ length: 25 }, () => () => {});
        for (const listener of listeners) signal.addEventListener('abort', listener);
        for (const listener of listeners) signal.removeEventListener('abort', listener);
        return 'done';
      }, 1_000);
      expect(answer).toBe('done');
      // Node emits the warning on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
