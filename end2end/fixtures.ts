// Fixtures for specs: clients and users made through the real CLI, against the suite's database.
import { test as base, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { authenticator } from 'otplib';
import { databaseUrl, mailDir, serverBin, serverEnv, sqliteFile } from './env';
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

/** The code an authenticator app shows now, or `steps` steps of 30 s later (earlier when negative). */
export function totp(secret: string, steps = 0): string {
  return authenticator.clone({ epoch: Date.now() + steps * 30_000 }).generate(secret);
}

/** Waits while a new 30-second step is less than 2 s away, so that a code of the previous step
 * is still within the server's window (current or previous step) when it arrives there. */
export async function awayFromStepEdge(page: Page) {
  const left = 30_000 - (Date.now() % 30_000);
  if (left < 2_000) await page.waitForTimeout(left + 200);
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

/** Runs one SQL statement on the suite's database (SQLite through python3, PostgreSQL through
 * psql), for fixtures that move data in time; `$1`, `$2`, … are `params`, bound as text. Returns
 * the rows, each as a list of its columns' text (`''` for NULL). */
export function sql(statement: string, params: string[] = []): string[][] {
  if (sqliteFile) {
    const script = [
      'import json, sqlite3, sys',
      'db = sqlite3.connect(sys.argv[1], timeout=10)',
      'rows = db.execute(sys.argv[2], sys.argv[3:]).fetchall()',
      'db.commit()',
      "print(json.dumps([['' if v is None else str(v) for v in row] for row in rows]))",
    ].join('\n');
    const numbered = statement.replace(/\$(\d+)/g, '?$1');
    const out = execFileSync('python3', ['-c', script, sqliteFile, numbered, ...params], { encoding: 'utf8' });
    return JSON.parse(out) as string[][];
  }
  // psql quotes a variable as a literal where the statement says :'name'.
  const input = `${statement.replace(/\$(\d+)/g, (_, n: string) => `:'p${n}'`)};\n`;
  const vars = params.flatMap((value, i) => ['-v', `p${i + 1}=${value}`]);
  const out = execFileSync(
    'psql',
    ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', ...vars, '-d', databaseUrl],
    { input, encoding: 'utf8' },
  );
  return out.split('\n').filter((line) => line !== '').map((line) => line.split('\t'));
}

/** The ids of the users with this email address, as a subquery for `sql` (its `$1`). */
const usersWithEmail = 'SELECT id FROM users WHERE email_key = lower($1)';

/** Moves a user's mail links into the past, as if their validity had run out. */
export function expireLinks(email: string): void {
  sql(`UPDATE link_tokens SET expires_at = created_at - 1 WHERE user_id IN (${usersWithEmail})`, [email]);
}

/** Moves a user's sessions `seconds` into the past (their start and their last request). */
export function ageSessions(email: string, seconds: number): void {
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new Error(`ageSessions: ${seconds} seconds`);
  sql(
    `UPDATE sessions SET created_at = created_at - ${seconds}, last_seen_at = last_seen_at - ${seconds}
     WHERE user_id IN (${usersWithEmail})`,
    [email],
  );
}

/** How many session rows a user has. */
export function sessionCount(email: string): number {
  return Number(sql(`SELECT COUNT(*) FROM sessions WHERE user_id IN (${usersWithEmail})`, [email])[0][0]);
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
