import { test, expect, logIn, createUser, cli, setClient, uniqueId, ageSessions, sessionCount } from '../fixtures';
import { sqliteFile, stateDir } from '../env';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

/** The day `months` calendar months from now in Berlin, as User administration writes it. */
function monthsFromNow(months: number): string {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', year: 'numeric', month: 'numeric', day: 'numeric' })
    .formatToParts(new Date());
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const total = get('year') * 12 + (get('month') - 1) + months;
  const year = Math.floor(total / 12);
  const month = total % 12;
  // The same day of the month, or the month's last.
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const day = Math.min(get('day'), lastDay);
  return new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'long', year: 'numeric' })
    .format(new Date(Date.UTC(year, month, day, 12)));
}

test('an admin sees when a deactivated user will be deleted, and deletes a user after a confirmation naming them', async ({ page, account }) => {
  const admin = createUser(account.companyId, 'chef', { role: 'admin' });
  const leaver = createUser(account.companyId, 'leaver', { firstName: 'Lea', lastName: 'Weg' });
  await logIn(page, admin);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await page.goto('/admin/users');

  // Deactivated: the row says on which day the account goes (six months by default).
  const leaverRow = page.getByRole('row', { name: /leaver/ });
  await leaverRow.getByRole('button', { name: 'Deactivate' }).click();
  await expect(page.getByRole('status')).toHaveText('The user has been deactivated and logged out everywhere.');
  await expect(leaverRow.getByText(`Will be deleted on ${monthsFromNow(6)}`)).toBeVisible();
  // Active users have no such date.
  await expect(page.getByRole('row', { name: /erika/ }).getByText(/Will be deleted/)).toHaveCount(0);

  // Delete asks first, naming the user; Cancel keeps them.
  const erikaRow = page.getByRole('row', { name: new RegExp(account.username) });
  await erikaRow.getByRole('button', { name: 'Delete' }).click();
  const dialog = page.getByRole('dialog', { name: `Delete Erika Mustermann (${account.username})?` });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toHaveCount(0);
  await expect(erikaRow).toBeVisible();

  await erikaRow.getByRole('button', { name: 'Delete' }).click();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByRole('status')).toHaveText('The user has been deleted.');
  await expect(page.getByRole('row', { name: new RegExp(account.username) })).toHaveCount(0);
  await expect(leaverRow).toBeVisible();

  // The deleted user cannot log in; the audit log names them by a pseudonym only.
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByLabel('Action').fill('user.deleted');
  await page.getByLabel('Action').press('Tab');
  await expect(page.getByRole('row', { name: /user\.deleted.*deleted user [0-9a-f]{8}/ })).toBeVisible();
  await page.getByRole('button', { name: 'Log out' }).click();
  await logIn(page, account);
  await expect(page.getByRole('alert')).toHaveText('The company ID, user name or password is not correct.');
});

test('operators set retention and inactivity per client in the console and the CLI; the CLI deletes, cleans up and backs up', async ({ page }) => {
  const companyId = uniqueId('LC');
  cli(['client', 'create', '--company-id', companyId, '--name', `${companyId} GmbH`]);
  setClient(companyId, { 'deletion-months': '12' });
  expect(() => setClient(companyId, { 'deletion-months': '25' })).toThrow(/--deletion-months: .*1 to 24/);

  const ops = createUser('promio', `ops${uniqueId('').toLowerCase()}`, { role: 'operator' });
  await logIn(page, ops);
  await page.getByRole('link', { name: 'Clients' }).click();
  await page.getByLabel('Search').fill(companyId);
  await page.getByRole('row', { name: new RegExp(companyId) }).getByRole('button', { name: 'Edit' }).click();
  await expect(page.getByLabel('Delete deactivated users after (months)')).toHaveValue('12');
  await expect(page.getByLabel('Deactivate inactive users after (months)')).toHaveValue('');
  await page.getByLabel('Deactivate inactive users after (months)').fill('2');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('alert')).toHaveText('Deactivate inactive users after (months) must be a whole number from 3 to 36.');
  await page.getByLabel('Deactivate inactive users after (months)').fill('6');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status')).toHaveText("The client's settings have been saved.");

  // user delete frees the user name at once.
  createUser(companyId, 'gone');
  expect(cli(['user', 'delete', '--company-id', companyId, '--username', 'gone'])).toMatch(/deleted \(deleted user [0-9a-f]{8} in the audit log\)/);
  expect(() => cli(['user', 'delete', '--company-id', companyId, '--username', 'gone'])).toThrow(/no such user/);
  createUser(companyId, 'gone');

  // One pass of housekeeping by hand deletes what is due: the operator's session, moved a month
  // into the past (beyond any idle or absolute limit the settings allow), is counted and gone.
  // The page leaves first, so that no request of its own ends or renews the session meanwhile.
  await page.goto('about:blank');
  expect(sessionCount(ops.email)).toBeGreaterThan(0);
  ageSessions(ops.email, 31 * 86_400);
  const report = cli(['housekeeping']);
  const sessionsDeleted = /^sessions: (\d+) deleted$/m.exec(report);
  expect(sessionsDeleted, report).not.toBeNull();
  expect(Number(sessionsDeleted![1]), report).toBeGreaterThan(0);
  expect(sessionCount(ops.email)).toBe(0);

  // A copy of the database while the server runs (SQLite; for PostgreSQL, the CLI points to pg_dump).
  const copy = path.join(stateDir, `backup-${uniqueId('').toLowerCase()}.db`);
  if (!sqliteFile) {
    expect(() => cli(['backup', copy])).toThrow(/for PostgreSQL use pg_dump/);
    return;
  }
  cli(['backup', copy]);
  expect(existsSync(copy) && statSync(copy).size > 0).toBe(true);
  expect(() => cli(['backup', copy])).toThrow(/exists already/);
});
