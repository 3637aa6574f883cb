#!/usr/bin/env node
// The command's entry point. Committed rather than built, so that installing the workspace can link
// it before the first build has written dist/.
import { main } from '../dist/bin.js';

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
