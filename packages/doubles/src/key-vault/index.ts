export { FakeCredential } from './fake-credential.js';
export {
  ALL_PERMISSIONS,
  type DoubleSetOptions,
  type DoubleVersionInfo,
  type Fault,
  type FaultHandle,
  KeyVaultDouble,
  type KeyVaultDoubleOptions,
  type KeyVaultOperation,
  type KeyVaultPermission,
  type RequestInfo,
  type RequestLogEntry,
} from './key-vault-double.js';
