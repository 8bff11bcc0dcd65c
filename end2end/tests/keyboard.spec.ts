// The flows by keyboard alone: every step below is a key press or typed text, never a click or a
// fill. Reading what is on the page (values, focus) is the only other thing the test does.
import { test, expect, createUser, waitForMail, linkIn } from '../fixtures';
import type { Locator, Page } from '@playwright/test';
import { authenticator } from 'otplib';

/** Presses Tab (or `key`) until `target` has the focus; fails when 80 presses do not get there. */
async function tabTo(page: Page, target: Locator, key = 'Tab') {
  await target.waitFor();
  // A button stays disabled until the page has hydrated, and Tab passes over a disabled one: a
  // person waits for the page, so the test does too.
  await expect(target).toBeEnabled();
  for (let i = 0; i < 80; i++) {
    if (await target.evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press(key);
  }
  throw new Error(`${key} never reached ${target}`);
}

/** Tabs to a field and types into it. */
async function typeInto(page: Page, field: Locator, text: string) {
  await tabTo(page, field);
  await page.keyboard.type(text);
}

async function press(page: Page, target: Locator) {
  await tabTo(page, target);
  await page.keyboard.press('Enter');
}

function totp(secret: string, steps = 0): string {
  return authenticator.clone({ epoch: Date.now() + steps * 30_000 }).generate(secret);
}

test('login with a failed attempt, two-factor set-up and the second step, by keyboard alone', async ({ page, account }) => {
  await page.goto('/login');
  await typeInto(page, page.getByLabel('Company ID'), account.companyId);
  await page.keyboard.press('Tab');
  await page.keyboard.type(account.username);
  await page.keyboard.press('Tab');
  await page.keyboard.type('not the right password');
  await page.keyboard.press('Enter');
  // The message takes the focus; what was typed stays, but the password.
  await expect(page.getByRole('alert')).toBeFocused();
  await expect(page.getByLabel('User name')).toHaveValue(account.username);
  await expect(page.getByLabel('Password', { exact: true })).toHaveValue('');

  await typeInto(page, page.getByLabel('Password', { exact: true }), account.password);
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/home$/);

  await press(page, page.getByRole('link', { name: 'Security' }));
  await press(page, page.getByRole('button', { name: 'Activate two-factor authentication' }));
  const secret = await page.getByLabel('Secret key').inputValue();
  const left = 30_000 - (Date.now() % 30_000);
  if (left < 2_000) await page.waitForTimeout(left + 200);
  await typeInto(page, page.getByLabel('Two-factor code'), totp(secret, -1));
  await page.keyboard.press('Enter');
  await expect(page.getByRole('list', { name: 'Recovery codes' })).toBeVisible();

  await press(page, page.getByRole('button', { name: 'Log out' }));
  await expect(page).toHaveURL(/notice=logged_out/);
  // The browser remembered the company ID: the user name is next.
  await expect(page.getByLabel('Company ID')).toHaveValue(account.companyId);
  await typeInto(page, page.getByLabel('User name'), account.username);
  await page.keyboard.press('Tab');
  await page.keyboard.type(account.password);
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/login\/two-factor$/);
  await typeInto(page, page.getByLabel('Two-factor code'), totp(secret));
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/home$/);
});

test('forgot password and the set-password link, by keyboard alone', async ({ page, account }) => {
  await page.goto('/login');
  await press(page, page.getByRole('link', { name: 'Forgot your password?' }));
  await typeInto(page, page.getByLabel('Company ID'), account.companyId);
  await page.keyboard.press('Tab');
  await page.keyboard.type(account.username);
  const since = Date.now();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('status')).toContainText(/mail/i);

  // Opening the link from the mail is the mail program's business; the rest is keys again.
  await page.goto(linkIn(await waitForMail(account.email, { since })));
  await typeInto(page, page.getByLabel('New password', { exact: true }), 'short');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('alert')).toBeFocused();
  await expect(page.getByLabel('New password', { exact: true })).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByLabel('New password', { exact: true })).toHaveAttribute('aria-describedby', /form-error/);

  const password = 'violet orbit canvas thunder';
  await tabTo(page, page.getByLabel('New password', { exact: true }));
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.type(password);
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/login\?notice=password_set$/);
  await expect(page.getByRole('status')).toBeVisible();
});

test('the user console, by keyboard alone: a new user, then a row action', async ({ page, account }) => {
  const admin = createUser(account.companyId, 'chef', { role: 'admin' });
  await page.goto('/login');
  await typeInto(page, page.getByLabel('Company ID'), admin.companyId);
  await page.keyboard.press('Tab');
  await page.keyboard.type(admin.username);
  await page.keyboard.press('Tab');
  await page.keyboard.type(admin.password);
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/home$/);

  await press(page, page.getByRole('link', { name: 'User administration' }));
  await press(page, page.getByRole('button', { name: 'New user' }));
  await typeInto(page, page.getByLabel('First name'), 'Kim');
  await typeInto(page, page.getByLabel('Last name'), 'Keys');
  await typeInto(page, page.getByLabel('Email address'), `kim@${account.companyId.toLowerCase()}.example`);
  await typeInto(page, page.getByLabel('User name'), 'kim');
  const since = Date.now();
  await press(page, page.getByRole('button', { name: 'Save' }));
  const row = page.getByRole('row').filter({ hasText: 'kim@' });
  await expect(row).toContainText('Invited');
  await waitForMail(`kim@${account.companyId.toLowerCase()}.example`, { since });

  await press(page, row.getByRole('button', { name: 'Resend registration mail' }));
  await expect(page.getByRole('status')).toBeVisible();
});
