// Secret properties as the SDK hands them over, checked (a client passed in as `client` has no
// answer policy in its pipeline) and turned into core metadata; and which version is current.
import type { KeyVaultSecret, SecretProperties } from '@azure/keyvault-secrets';
import type { SecretMetadata } from '@secret-provider/core';
import { KeyVaultAnswerError } from './answers.js';
import { KEY_VAULT_NAME_PATTERN } from './names.js';

/** One version of a secret, from a versions listing. */
export interface VersionInfo {
  readonly version: string;
  readonly created: number;
  readonly properties: SecretProperties;
}

/**
 * `properties` if they are what Key Vault sends: a valid name (the expected one, ignoring case,
 * when given), a version where one is `required`, dates that are dates, flags that are booleans.
 */
export function checkedProperties(
  properties: SecretProperties | undefined,
  expect: { readonly name?: string | undefined; readonly version: 'required' | 'none' | 'any' },
): SecretProperties {
  if (typeof properties !== 'object' || properties === null) throw new KeyVaultAnswerError('shape');
  const { name, version } = properties as { name: unknown; version: unknown };
  if (typeof name !== 'string' || !KEY_VAULT_NAME_PATTERN.test(name)) throw new KeyVaultAnswerError('id');
  if (expect.name !== undefined && name.toLowerCase() !== expect.name.toLowerCase()) {
    throw new KeyVaultAnswerError('other-secret');
  }
  const hasVersion = typeof version === 'string' && version.length > 0 && !version.includes('/');
  if (version !== undefined && !hasVersion) throw new KeyVaultAnswerError('id');
  if ((expect.version === 'required' && !hasVersion) || (expect.version === 'none' && hasVersion)) {
    throw new KeyVaultAnswerError('id');
  }
  for (const date of [
    properties.createdOn,
    properties.updatedOn,
    properties.expiresOn,
    properties.notBefore,
  ]) {
    if (date !== undefined && !(date instanceof Date && Number.isFinite(date.getTime()))) {
      throw new KeyVaultAnswerError('property-types');
    }
  }
  for (const flag of [properties.enabled, properties.managed]) {
    if (flag !== undefined && typeof flag !== 'boolean') throw new KeyVaultAnswerError('property-types');
  }
  const { contentType, tags } = properties;
  if (contentType !== undefined && typeof contentType !== 'string')
    throw new KeyVaultAnswerError('property-types');
  if (
    tags !== undefined &&
    (typeof tags !== 'object' || tags === null || !Object.values(tags).every((t) => typeof t === 'string'))
  ) {
    throw new KeyVaultAnswerError('property-types');
  }
  return properties;
}

/**
 * The value and properties of a read, checked: a 200 without a value is not an empty secret, and
 * an answer about another secret or version is not this one.
 */
export function checkedSecret(
  secret: KeyVaultSecret,
  expect: { readonly name: string; readonly version?: string | undefined },
): { value: string; properties: SecretProperties } {
  if (typeof secret !== 'object' || secret === null) throw new KeyVaultAnswerError('shape');
  if (typeof secret.value !== 'string') throw new KeyVaultAnswerError('no-value');
  const properties = checkedProperties(secret.properties, { name: expect.name, version: 'required' });
  if (expect.version !== undefined && properties.version?.toLowerCase() !== expect.version.toLowerCase()) {
    throw new KeyVaultAnswerError('other-secret');
  }
  return { value: secret.value, properties };
}

/** Core metadata of checked properties. */
export function metadataOf(properties: SecretProperties): Omit<SecretMetadata, 'key'> {
  return {
    version: properties.version,
    createdAt: properties.createdOn,
    updatedAt: properties.updatedOn,
    expiresAt: properties.expiresOn,
    contentType: properties.contentType,
    tags: properties.tags === undefined ? undefined : Object.freeze({ ...properties.tags }),
    enabled: properties.enabled,
  };
}

/**
 * The current version. Key Vault stamps creation in whole seconds, so several versions can share
 * the latest stamp. Among those, a version `seen` in no earlier listing is newer than every
 * version that was; with none new, the `known` current version stays current; otherwise the
 * last listed wins (Key Vault lists versions in creation order).
 */
export function latestOf(
  versions: readonly VersionInfo[],
  known: string | undefined,
  seen?: ReadonlySet<string>,
): VersionInfo | undefined {
  let newest = Number.NEGATIVE_INFINITY;
  for (const v of versions) newest = Math.max(newest, v.created);
  const group = versions.filter((v) => v.created === newest);
  if (group.length <= 1) return group[0];
  const fresh = seen === undefined ? [] : group.filter((v) => !seen.has(v.version));
  if (fresh.length > 0) return fresh.at(-1);
  return group.find((v) => v.version === known) ?? group.at(-1);
}

/** The version that was current when the list showed `updated` (epoch ms, whole seconds). */
export function asOf(versions: readonly VersionInfo[], updated: number | undefined): VersionInfo | undefined {
  if (updated === undefined) return undefined;
  return latestOf(
    versions.filter((v) => v.created <= updated),
    undefined,
  );
}
