export type { DocumentFormat, JsonKeyStyle } from './document.js';
export {
  HttpProvider,
  type HttpProviderOptions,
  type HttpProviderStats,
  PROVIDER_NAME,
} from './http-provider.js';
export type { CredentialReference } from './transport.js';
