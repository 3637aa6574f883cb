#!/usr/bin/env node
// Runs the stand-in database for trying an example by hand:
//   node src/cli.mjs --port 5433 --passwords-file ./db-passwords
// The file holds the accepted passwords, one per line, and is read at every handshake: add the
// new password to it, rotate the secret, then remove the old one.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startStandInDatabase } from './index.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '5433' },
    user: { type: 'string', default: 'app' },
    'passwords-file': { type: 'string' },
  },
});
const file = values['passwords-file'];
if (file === undefined) {
  console.error('usage: stand-in-db --passwords-file FILE [--port 5433] [--user app]');
  process.exit(2);
}
const passwords = () =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
const db = await startStandInDatabase({ port: Number(values.port), user: values.user, passwords });
console.log(`stand-in database on 127.0.0.1:${db.port} (user "${values.user}"), passwords from ${file}`);
for (const signal of ['SIGINT', 'SIGTERM'])
  process.once(signal, () => void db.close().then(() => process.exit(0)));
