// Fixtures for specs: clients and users made through the real CLI, against the suite's database.
import { test as base, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mailDir, serverBin, serverEnv, sqliteFile } from './env';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

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

/** The serious and critical WCAG 2.2 A/AA violations axe-core finds on the page as it is now. */
export async function axeViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'])
    .analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

export type Mail = { to: string[]; subject: string; text: string; html: string; receivedAt?: string };

/** Waits (up to 20 s) for a mail to `address` received after `since`, as the SMTP sink stored it. */
export async function waitForMail(address: string, options: { subject?: RegExp; since?: number } = {}): Promise<Mail> {
  const deadline = Date.now() + 20_000;
  const since = options.since ?? 0;
  while (Date.now() < deadline) {
    if (existsSync(mailDir)) {
      const files = readdirSync(mailDir).filter((f) => f.endsWith('.json')).sort().reverse();
      for (const file of files) {
        if (Number(file.split('-')[0]) < since) continue;
        const mail = JSON.parse(readFileSync(path.join(mailDir, file), 'utf8')) as Mail;
        if (mail.to.some((t) => t.toLowerCase() === address.toLowerCase()) && (!options.subject || options.subject.test(mail.subject))) {
          return mail;
        }
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no mail to ${address} within 20 s`);
}

/** The one link in a mail. */
export function linkIn(mail: Mail): string {
  const links = mail.text.match(/https?:\/\/\S+/g) ?? [];
  expect(links).toHaveLength(1);
  return links[0];
}

/** Moves a user's mail links into the past, as if their validity had run out (SQLite suite database). */
export function expireLinks(email: string): void {
  if (!sqliteFile) throw new Error('expireLinks needs the suite\'s own SQLite database');
  const script = [
    'import sqlite3, sys',
    'db = sqlite3.connect(sys.argv[1])',
    "db.execute(\"UPDATE link_tokens SET expires_at = created_at - 1 WHERE user_id IN (SELECT id FROM users WHERE email_key = lower(?))\", (sys.argv[2],))",
    'db.commit()',
  ].join('\n');
  execFileSync('python3', ['-c', script, sqliteFile, email]);
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
