import { test, expect, logIn, createUser, uniqueId, axeViolations as violations } from '../fixtures';

// The pages of the second step and of the enrolment a client requires are checked in
// two-factor.spec.ts, where a test gets there.
test('axe-core finds no serious or critical violation on any page, and each page hydrates when loaded directly', async ({ page, account }) => {
  const found: Record<string, string[]> = {};
  // A page the server rendered must hydrate without a mismatch (which stops its script).
  const scriptErrors: string[] = [];
  page.on('pageerror', (e) => scriptErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /hydrat/i.test(m.text())) scriptErrors.push(`${page.url()}: ${m.text()}`);
  });
  const check = async (name: string) => {
    await page.waitForLoadState('networkidle');
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
  const admin = createUser(account.companyId, 'chef', { role: 'admin' });
  await logIn(page, admin);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await check('/home');
  for (const path of ['/security', '/admin/users', '/admin/audit']) {
    await page.goto(path);
    await check(path);
  }
  await page.getByRole('button', { name: 'Log out' }).click();
  const ops = createUser('promio', `ops${uniqueId('').toLowerCase()}`, { role: 'operator' });
  await logIn(page, ops);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await page.goto('/operator/clients');
  await check('/operator/clients');
  const failing = Object.entries(found).filter(([, v]) => v.length > 0);
  expect(failing, JSON.stringify(failing, null, 2)).toEqual([]);
  expect(scriptErrors).toEqual([]);
});
