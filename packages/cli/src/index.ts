export { looksLikeSecret, main, USAGE } from './main.js';
export {
  type CheckLine,
  colourEnabled,
  EXIT,
  exitCodeOf,
  type Io,
  type Outcome,
  spinnerEnabled,
} from './output.js';
