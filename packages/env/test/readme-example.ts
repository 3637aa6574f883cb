import { createEmitter } from '@secret-provider/core';
import { EnvProvider } from '@secret-provider/env';

/**
 * The README's example, run by readme.test.ts from a directory holding `.env` files. The lines
 * between the markers appear in the README word for word.
 */
export async function example(change: () => Promise<void>): Promise<string[]> {
  // readme:begin
  const env = new EnvProvider({
    prefix: 'APP_', // APP_DATABASE_URL is read as DATABASE_URL; other variables stay hidden
    files: ['.env', '.env.local'], // later files win; the real environment wins over both
    pollInterval: 500, // while watched: how often the environment is compared
  });

  const url = await env.get('DATABASE_URL');
  console.log(`connecting with ${url}`); // connecting with [REDACTED]
  const keys = await env.keys(); // names only, and only the APP_ ones

  const events = createEmitter();
  events.on('rotated', ({ keys }) => console.log('rotated:', keys)); // names, never values
  const watch = env.watch(events);
  await watch.ready;
  // readme:end

  await change();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  await env.close(); // stops the watch too
  return keys;
}
