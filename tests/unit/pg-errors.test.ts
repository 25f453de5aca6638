import { describe, expect, it } from 'vitest';
import { QuarryError } from '../../src/errors.ts';
import { databaseError, isUnavailable } from '../../src/store/postgres/pg-errors.ts';

/** A driver error as pg raises it: an Error with the SQLSTATE (or Node's socket code) in `code`. */
const pgError = (code: string, message = `error ${code}`) => Object.assign(new Error(message), { code });

describe('database errors: unavailable (503, retry later) or not', () => {
  it('reads connection, shutdown, resource, standby and missing-database SQLSTATEs as unavailable', () => {
    for (const code of ['08006', '57P01', '57P03', '53300', '25006', '40001', '40P01', '3D000', 'ECONNREFUSED', 'ETIMEDOUT'])
      expect(isUnavailable(pgError(code)), code).toBe(true);
    expect(isUnavailable(new AggregateError([pgError('ECONNREFUSED'), pgError('ECONNREFUSED')]))).toBe(true);
    expect(isUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  it('leaves a request-shaped or programming error alone', () => {
    for (const code of ['23505', '42601', '42P01', '22P02']) expect(isUnavailable(pgError(code)), code).toBe(false);
    const bug = pgError('42703');
    expect(databaseError(bug)).toBe(bug);
  });

  it('turns an unavailable one into `unavailable` with a Retry-After hint and the reason', () => {
    const e = databaseError(pgError('3D000', 'database "quarry" does not exist'));
    expect(e).toBeInstanceOf(QuarryError);
    expect(e).toMatchObject({ code: 'unavailable', details: { retryAfterSeconds: 5 } });
    expect((e as QuarryError).message).toContain('database "quarry" does not exist');
  });
});
