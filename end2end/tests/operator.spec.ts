import { test, expect, logIn, createUser, uniqueId, waitForMail, linkIn } from '../fixtures';
import { baseURL, idpClient, idpIssuer } from '../env';

test('an operator makes a client with 2 h registration links; its admin invites a user; the mail says 2 h; the audit log shows it', async ({ page }) => {
  const ops = createUser('promio', `ops${uniqueId('').toLowerCase()}`, { role: 'operator', firstName: 'Olga', lastName: 'Operator' });
  await logIn(page, ops);
  await page.getByRole('link', { name: 'Clients' }).click();
  await expect(page.getByRole('heading', { name: 'Clients' })).toBeVisible();

  const companyId = uniqueId('CO');
  await page.getByRole('button', { name: 'New client' }).click();
  await page.getByLabel('Company ID').fill(companyId);
  await page.getByLabel('Name', { exact: true }).fill(`${companyId} GmbH`);
  await page.getByLabel('Registration link validity (hours)').fill('0');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('alert')).toHaveText('Registration link validity (hours) must be a whole number from 1 to 720.');
  await page.getByLabel('Registration link validity (hours)').fill('2');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status')).toHaveText('The client has been created.');
  await expect(page.getByRole('row', { name: new RegExp(companyId) })).toBeVisible();
  await page.getByRole('button', { name: 'Log out' }).click();

  const admin = createUser(companyId, 'chef', { role: 'admin' });
  await logIn(page, admin);
  await page.getByRole('link', { name: 'User administration' }).click();
  const since = Date.now();
  await page.getByRole('button', { name: 'New user' }).click();
  await page.getByLabel('First name').fill('Nina');
  await page.getByLabel('Last name').fill('Neu');
  await page.getByLabel('Email address').fill(`nina@${companyId.toLowerCase()}.example`);
  await page.getByLabel('User name').fill('nina');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status')).toHaveText('The user has been created and the registration mail has been sent.');

  const mail = await waitForMail(`nina@${companyId.toLowerCase()}.example`, { since });
  const sent = new Date(mail.receivedAt ?? Date.now());
  const until = mail.text.match(/valid until (\d{1,2} \w+ \d{4}, (\d\d):(\d\d)) (CES?T)/);
  expect(until).not.toBeNull();
  // Two hours after now, in Berlin time.
  const berlin = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit', hour12: false });
  const expected = berlin.format(new Date(sent.getTime() + 2 * 3600_000));
  const got = `${until![2]}:${until![3]}`;
  const minutes = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));
  expect(Math.abs(minutes(got) - minutes(expected)) % (24 * 60)).toBeLessThanOrEqual(1);
  expect(linkIn(mail)).toContain('/set-password?token=');

  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByLabel('Action').fill('user.created');
  await page.getByLabel('Action').press('Tab');
  await expect(page.getByRole('row', { name: /user\.created.*nina/ })).toBeVisible();
});

test('an operator connects a client to its identity provider in the console', async ({ page }) => {
  const ops = createUser('promio', `ops${uniqueId('').toLowerCase()}`, { role: 'operator' });
  await logIn(page, ops);
  await page.getByRole('link', { name: 'Clients' }).click();
  const companyId = uniqueId('SSOCO');
  await page.getByRole('button', { name: 'New client' }).click();
  await page.getByLabel('Company ID').fill(companyId);
  await page.getByLabel('Name', { exact: true }).fill(`${companyId} GmbH`);

  // A wrong issuer: Test connection says what failed, and Save stores nothing.
  await page.getByLabel('Issuer URL').fill(`${idpIssuer}/no-such-tenant`);
  const sso = page.getByRole('group', { name: /Single sign-on/ });
  await sso.getByRole('button', { name: 'Test connection' }).click();
  await expect(sso.getByRole('alert')).toContainText('The identity provider could not be used');
  await page.getByLabel('Client ID', { exact: true }).fill(idpClient.client_id);
  await page.getByLabel('Client secret').fill(idpClient.client_secret);
  await page.getByLabel('Email domains').fill(`${companyId.toLowerCase()}.example`);
  await page.getByRole('button', { name: 'Save' }).click();
  // Only the form's own message: the earlier test result made way for it.
  await expect(page.getByRole('alert')).toHaveCount(1);
  await expect(page.getByRole('alert')).toContainText('The identity provider could not be used');
  await expect(sso.getByRole('alert')).toHaveCount(0);

  await page.getByLabel('Issuer URL').fill(idpIssuer);
  await page.getByRole('button', { name: 'Test connection' }).click();
  const ok = page.getByRole('status').filter({ hasText: 'Connection OK' });
  await expect(ok).toBeVisible();
  await expect(ok).toContainText(`${baseURL}/sso/callback`);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'The client has been created.' })).toBeVisible();
  // The list shows a page of clients; other specs make many, so look this one up.
  await page.getByRole('searchbox', { name: 'Search' }).fill(companyId);
  const row = page.getByRole('row', { name: new RegExp(companyId) });
  await expect(row.getByRole('cell', { name: 'Yes' })).toHaveCount(1);

  // Its users now log in through the IdP.
  createUser(companyId, 'jane', { password: null });
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Login with SSO' }).click();
  await page.getByLabel('Email address').fill(`jane@${companyId.toLowerCase()}.example`);
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page).toHaveURL(new RegExp(`^${idpIssuer}/interaction/`));
  await page.locator('input[name="password"]').fill('x');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await expect(page).toHaveURL(/\/home$/);
  await expect(page.getByText(`${companyId} GmbH`)).toBeVisible();
});
