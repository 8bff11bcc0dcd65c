import {
  test, expect, logIn, createUser, uniqueId, waitForMail, linkIn, axeViolations as violations,
} from '../fixtures';

// The pages of the second step and of the enrolment a client requires are checked in
// two-factor.spec.ts, where a test gets there; the idle warning in idle-warning.spec.ts (it needs a
// server with a short idle timeout).
test('axe-core finds no serious or critical violation on any page, and each page hydrates when loaded directly', async ({ page, account }) => {
  // Sixteen axe runs, two logins and a mail.
  test.setTimeout(120_000);
  const found: Record<string, string[]> = {};
  // A page the server rendered must hydrate without a mismatch (which stops its script).
  const scriptErrors: string[] = [];
  page.on('pageerror', (e) => scriptErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /hydrat/i.test(m.text())) scriptErrors.push(`${page.url()}: ${m.text()}`);
  });
  const check = async (name: string) => {
    await page.waitForLoadState('networkidle');
    await expect(page.locator('html'), `${name}: the script has taken over`).toHaveAttribute('data-hydrated', '');
    found[name] = await violations(page);
  };
  for (const path of ['/login', '/forgot-password', '/sso', '/set-password?token=nothing']) {
    await page.goto(path);
    await check(path);
  }
  // With a message shown (and the focus on it).
  await page.goto('/login');
  await page.waitForLoadState('networkidle');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toBeFocused();
  await check('/login with an error');

  // The set-password form behind a registration link, and with its error.
  const since = Date.now();
  const invited = createUser(account.companyId, 'neu', { password: null });
  await page.goto(linkIn(await waitForMail(invited.email, { since })));
  await expect(page.getByLabel('New password', { exact: true })).toBeVisible();
  await check('/set-password');
  await page.getByLabel('New password', { exact: true }).fill('violet orbit canvas thunder');
  await page.getByLabel('Repeat new password').fill('violet orbit canvas thunderstorm');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText('The two passwords are not the same.');
  await check('/set-password with an error');

  const admin = createUser(account.companyId, 'chef', { role: 'admin' });
  await logIn(page, admin);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await check('/home');
  for (const path of ['/security', '/admin/audit', '/admin/users']) {
    await page.goto(path);
    await check(path);
  }
  // User administration with its forms and dialogs open: New user, then Delete.
  await page.getByRole('button', { name: 'New user' }).click();
  await expect(page.getByLabel('First name')).toBeVisible();
  await check('/admin/users: New user');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByLabel('First name')).toHaveCount(0);
  await page.getByRole('row', { name: new RegExp(account.username) }).getByRole('button', { name: 'Delete' }).click();
  const confirm = page.getByRole('dialog', { name: `Delete Erika Mustermann (${account.username})?` });
  await expect(confirm).toBeVisible();
  await check('/admin/users: Delete');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(confirm).toHaveCount(0);
  await page.getByRole('button', { name: 'Log out' }).click();
  const ops = createUser('promio', `ops${uniqueId('').toLowerCase()}`, { role: 'operator' });
  await logIn(page, ops);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await page.goto('/operator/clients');
  await check('/operator/clients');
  // A client's settings open for editing.
  await page.getByLabel('Search').fill(account.companyId);
  await page.getByRole('row', { name: new RegExp(account.companyId) }).getByRole('button', { name: 'Edit' }).click();
  await expect(page.getByLabel('Delete deactivated users after (months)')).toBeVisible();
  await check('/operator/clients: Edit');
  const failing = Object.entries(found).filter(([, v]) => v.length > 0);
  expect(failing, JSON.stringify(failing, null, 2)).toEqual([]);
  expect(scriptErrors).toEqual([]);
});
