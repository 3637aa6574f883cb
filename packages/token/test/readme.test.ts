import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ManualClock } from '@secret-provider/core/adapter';
import { expect, it } from 'vitest';
import { ResourceServer, TokenEndpoint } from './servers.js';

// The README's first example runs as written, with its URLs and client secret pointed at local
// servers, so the documentation cannot drift from the API.
it('runs the README example against a local token endpoint and resource server', async () => {
  const readme = await readFile(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (example === undefined) throw new Error('no example in the README');
  const clock = new ManualClock(Date.now());
  const endpoint = await new TokenEndpoint(clock).listen();
  const server = await new ResourceServer(clock, [endpoint.publicKey]).listen();
  // Inside the package, so that the example's imports resolve as a user's project would.
  const dir = await mkdtemp(fileURLToPath(new URL('../.tmp-readme-', import.meta.url)));
  try {
    const code = example
      .replace("'https://auth.example/oauth2/token'", JSON.stringify(`${endpoint.url}/token`))
      .replace("'https://orders.example/v1/orders'", JSON.stringify(`${server.url}/resource`))
      .replace("'the-client-secret'", JSON.stringify(endpoint.clientSecret));
    expect(code).not.toBe(example);
    const file = join(dir, 'example.ts');
    await writeFile(file, `${code}\nexport { status };\n`);
    const { status } = await import(/* @vite-ignore */ pathToFileURL(file).href);
    expect(status).toBe(200);
    expect(endpoint.received[0]?.form.get('scope')).toBe('orders:read');
    expect(server.served).toBe(1);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await endpoint.close();
    await server.close();
  }
});
