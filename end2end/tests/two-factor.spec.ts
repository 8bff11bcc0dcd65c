import { test, expect, logIn, setClient, axeViolations, totp, awayFromStepEdge } from '../fixtures';
import { Page } from '@playwright/test';

/** Activates 2FA on the current page's flow; returns the secret key shown and the recovery codes. */
async function activate(page: Page): Promise<{ secret: string; codes: string[] }> {
  await page.getByRole('button', { name: 'Activate two-factor authentication' }).click();
  await expect(page.getByRole('img', { name: 'QR code' })).toBeVisible();
  const secret = await page.getByLabel('Secret key').inputValue();
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  // The previous step's code (also accepted), so that the current one is still unused afterwards.
  await awayFromStepEdge(page);
  await page.getByLabel('Two-factor code').fill(totp(secret, -1));
  await page.getByRole('button', { name: 'Activate', exact: true }).click();
  const list = page.getByRole('list', { name: 'Recovery codes' });
  await expect(list.getByRole('listitem')).toHaveCount(10);
  const codes = await list.getByRole('listitem').allTextContents();
  for (const code of codes) expect(code.trim()).toMatch(/^[a-z0-9]{4}-[a-z0-9]{4}$/);
  return { secret, codes: codes.map((c) => c.trim()) };
}

async function secondStep(page: Page, code: string) {
  await expect(page).toHaveURL(/\/login\/two-factor$/);
  await page.getByLabel('Two-factor code').fill(code);
  await page.getByRole('button', { name: 'OK' }).click();
}

async function logOut(page: Page) {
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login/);
}

test('activate 2FA, then log in with a code; replays and wrong codes are refused; a recovery code works once', async ({ page, account }) => {
  await logIn(page, account);
  await page.getByRole('link', { name: 'Security' }).click();
  const { secret, codes } = await activate(page);
  await logOut(page);

  await logIn(page, account);
  const code = totp(secret);
  await secondStep(page, code);
  await expect(page.getByRole('heading', { name: /Logged in as/ })).toBeVisible();
  await logOut(page);

  const refused = 'The two-factor code is not correct or has already been used.';
  await logIn(page, account);
  await secondStep(page, code);
  await expect(page.getByRole('alert')).toHaveText(refused);
  await page.waitForLoadState('networkidle');
  expect(await axeViolations(page), 'the second step, with its message').toEqual([]);
  await page.getByLabel('Two-factor code').fill(code === '000000' ? '111111' : '000000');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText(refused);

  await page.getByLabel('Two-factor code').fill(codes[0]);
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await logOut(page);

  await logIn(page, account);
  await secondStep(page, codes[0]);
  await expect(page.getByRole('alert')).toHaveText(refused);
});

test('a client that requires 2FA leads to activation right after the password', async ({ page, account }) => {
  setClient(account.companyId, { 'require-2fa': 'true' });
  await logIn(page, account);
  await expect(page).toHaveURL(/\/login\/two-factor-setup$/);
  await expect(page.getByRole('status')).toHaveText('Your company requires two-factor authentication. Please set it up to continue.');
  await expect(page.getByRole('button', { name: 'Log out' })).toHaveCount(0);
  await page.waitForLoadState('networkidle');
  expect(await axeViolations(page), 'the enrolment a client requires').toEqual([]);
  await activate(page);
  expect(await axeViolations(page), 'the recovery codes').toEqual([]);
  // The activation started the session: the bar shows it before the page is left.
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await page.getByRole('link', { name: 'Continue' }).click();
  await expect(page.getByRole('heading', { name: /Logged in as/ })).toBeVisible();
});

test('2FA can be deactivated with the password and a code', async ({ page, account }) => {
  await logIn(page, account);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await page.goto('/security');

  const { secret } = await activate(page);
  // Without a reload, the page shows 2FA as on, keeps the codes in view and offers to turn it off.
  await expect(page.getByText('Two-factor authentication is on.', { exact: true })).toBeVisible();
  await expect(page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem')).toHaveCount(10);
  await page.getByRole('button', { name: 'Deactivate two-factor authentication' }).click();
  await page.getByLabel('Password', { exact: true }).fill(account.password);
  await page.getByLabel('Two-factor code').fill(totp(secret));
  await page.getByRole('button', { name: 'Deactivate two-factor authentication' }).click();
  await expect(page.getByText('Two-factor authentication is off.')).toBeVisible();
  await expect(page.getByRole('list', { name: 'Recovery codes' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Activate two-factor authentication' })).toBeVisible();
});
