import {
  isSecretError,
  RateLimitedError,
  type SecretError,
  SecretNotFoundError,
  type SecretProvider,
} from '@secret-provider/core';
import { expectTypeOf, test } from 'vitest';

declare function open(): SecretProvider;

test('await using works on a value typed as the contract', async () => {
  await using provider = open();
  expectTypeOf(provider.name).toEqualTypeOf<string>();
});

test('error classes are values and types', () => {
  let error: SecretNotFoundError = new SecretNotFoundError({ key: 'a' });
  error = new SecretNotFoundError();
  expectTypeOf(error.code).toEqualTypeOf<'NOT_FOUND'>();
  expectTypeOf(error).toMatchTypeOf<SecretError>();
});

test('isSecretError narrows to the class of the code', () => {
  const caught: unknown = new RateLimitedError({ retryAfterMs: 5 });
  if (isSecretError(caught, 'RATE_LIMITED')) {
    expectTypeOf(caught).toEqualTypeOf<RateLimitedError>();
    expectTypeOf(caught.code).toEqualTypeOf<'RATE_LIMITED'>();
  }
  if (isSecretError(caught, 'UNKNOWN')) expectTypeOf(caught.code).toEqualTypeOf<'UNKNOWN'>();
  if (isSecretError(caught)) expectTypeOf(caught).toEqualTypeOf<SecretError>();
});
