export { SECRET_FILE_MODE, writeFileAtomic } from './atomic-write.js';
export { DotenvSyntaxError, DotenvValueError, formatDotenvValue, parseDotenv } from './dotenv.js';
export { InsecurePermissionsError } from './errors.js';
export {
  type FileFormat,
  FileProvider,
  type FileProviderOptions,
  type FileProviderStats,
  PROVIDER_NAME,
  type TrailingNewline,
} from './file-provider.js';
export type { JsonKeyStyle } from './json.js';
