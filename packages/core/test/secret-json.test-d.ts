import { Secret } from '@secret-provider/core';
import { expectTypeOf, test } from 'vitest';

test('json() and map() keep the type they produce', () => {
  const source = new Secret('{"port":5432}');
  expectTypeOf(source.json()).toEqualTypeOf<Secret<unknown>>();
  const typed = source.json((value) => value as { port: number });
  expectTypeOf(typed).toEqualTypeOf<Secret<{ port: number }>>();
  expectTypeOf(typed.reveal().port).toEqualTypeOf<number>();
  expectTypeOf(typed.map((value) => value.port)).toEqualTypeOf<Secret<number>>();
  expectTypeOf(new Secret('a')).toEqualTypeOf<Secret<string>>();
});
