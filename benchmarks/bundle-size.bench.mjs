// What an application ships for what it imports from core, bundled and tree-shaken: only
// `Secret`, the application entry as a whole, and the redactor. The baseline is the whole
// application entry, measured in the same run.
import { bundledSize } from './lib/bundle-size.mjs';
import { report } from './lib/harness.mjs';

const cases = {
  'import { Secret }': "import { Secret } from '@secret-provider/core'; console.log(new Secret('x'));",
  'import { createRedactor }':
    "import { createRedactor } from '@secret-provider/core'; console.log(createRedactor());",
  'import * (application entry)': "import * as core from '@secret-provider/core'; console.log(core);",
};
const rows = [];
const sizes = {};
for (const [name, source] of Object.entries(cases)) {
  const { bytes, gzip, text } = await bundledSize(source);
  sizes[name] = bytes;
  rows.push({ case: name, bytes, gzip, 'has the redactor': /PatternMatcher|SHORT_SECRET/.test(text) });
}
const whole = sizes['import * (application entry)'];
report('bundled size of core imports (esbuild, minified)', rows);
console.log(
  `- import { Secret } vs the whole application entry: ${(sizes['import { Secret }'] / whole).toFixed(2)}x`,
);
