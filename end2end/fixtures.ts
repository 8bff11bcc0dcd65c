// Fixtures for specs: clients and users made through the real CLI, against the suite's database.
import { test as base, expect, Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { serverBin, serverEnv } from './env';

/** Runs `promio-connect ARGS` against the suite's database; throws with its stderr on failure. */
export function cli(args: string[], input?: string): string {
  try {
    return execFileSync(serverBin, args, {
      env: { ...process.env, ...serverEnv(), RUST_LOG: 'warn' },
      input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err: any) {
    throw new Error(`promio-connect ${args.join(' ')} failed: ${err.stderr ?? err}`);
  }
}

/** A name no other test uses, for company IDs. */
export function uniqueId(prefix = 'T'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`.toUpperCase();
}

export type Account = {
  companyId: string;
  username: string;
  password: string;
  email: string;
};

export function createClient(companyId: string, name = `${companyId} GmbH`): void {
  cli(['client', 'create', '--company-id', companyId, '--name', name]);
}

export function setClient(companyId: string, options: Record<string, string>): void {
  const args = ['client', 'set', '--company-id', companyId];
  for (const [key, value] of Object.entries(options)) args.push(`--${key}`, value);
  cli(args);
}

/** Creates an active user with a password (or an invited one when `password` is null). */
export function createUser(
  companyId: string,
  username: string,
  options: { password?: string | null; role?: 'user' | 'admin' | 'operator'; firstName?: string; lastName?: string } = {},
): Account {
  const password = options.password === undefined ? `pw-${randomBytes(12).toString('hex')}` : options.password;
  const email = `${username}@${companyId.toLowerCase()}.example`;
  const args = [
    'user', 'create', '--company-id', companyId, '--username', username, '--email', email,
    '--role', options.role ?? 'user',
    '--first-name', options.firstName ?? 'Erika', '--last-name', options.lastName ?? 'Mustermann',
  ];
  if (password !== null) args.push('--password-stdin');
  cli(args, password ?? undefined);
  return { companyId, username, password: password ?? '', email };
}

/** Fills and submits the login form. */
export async function logIn(page: Page, account: Pick<Account, 'companyId' | 'username' | 'password'>) {
  await page.goto('/login');
  await page.getByLabel('Company ID').fill(account.companyId);
  await page.getByLabel('User name').fill(account.username);
  await page.getByLabel('Password', { exact: true }).fill(account.password);
  await page.getByRole('button', { name: 'OK' }).click();
}

type Fixtures = {
  /** A fresh client with one active user, per test. */
  account: Account;
};

export const test = base.extend<Fixtures>({
  account: async ({}, use) => {
    const companyId = uniqueId('CO');
    createClient(companyId);
    await use(createUser(companyId, 'erika'));
  },
});

export { expect };
