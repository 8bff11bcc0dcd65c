import { test, expect, logIn, createClient, createUser, uniqueId, Account } from '../fixtures';
import type { CDPSession, Page } from '@playwright/test';

/** Chromium's virtual authenticator (the DevTools protocol's WebAuthn domain): a platform
 * authenticator that keeps discoverable credentials and verifies its user, as a laptop's
 * fingerprint reader would. */
async function virtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; id: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, id: authenticatorId };
}

/** The home page names who is logged in: the person, their company and their user name. */
async function expectLoggedInAs(page: Page, account: Account) {
  await expect(page).toHaveURL(/\/home$/);
  await expect(page.getByRole('heading', { name: 'Logged in as Erika Mustermann' })).toBeVisible();
  await expect(page.locator('dl.facts dd')).toHaveText([
    `${account.companyId} GmbH (${account.companyId})`,
    account.username,
    'User',
  ]);
}

async function logOut(page: Page) {
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByLabel('Company ID')).toBeVisible();
}

test('add a passkey, use it as the second factor and alone, remove it, and see it refused', async ({ page, account }) => {
  const { cdp, id } = await virtualAuthenticator(page);
  await logIn(page, account);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();

  // Security: add a passkey (the browser's dialog is the virtual authenticator), then name it.
  await page.getByRole('link', { name: 'Security' }).click();
  await expect(page.getByText('You have no passkeys yet.')).toBeVisible();
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(page.getByRole('status')).toHaveText('The passkey has been added. You can give it a name.');
  const name = page.getByLabel('Passkey name');
  await expect(name).toHaveValue(/\S/); // named after the device until renamed
  await name.fill('My laptop');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status')).toHaveText('The name has been saved.');
  const listed = page.getByRole('listitem').filter({ hasText: 'My laptop' });
  await expect(listed).toBeVisible();
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: id });
  expect(credentials).toHaveLength(1);
  expect(credentials[0].isResidentCredential).toBe(true);
  await logOut(page);

  // The password, then the passkey as the second factor.
  await logIn(page, account);
  await expect(page.getByRole('heading', { name: 'Two-factor authentication' })).toBeVisible();
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await expectLoggedInAs(page, account);
  await logOut(page);

  // The passkey alone: it names the user and so the company. Another user of another client,
  // logged in last on this browser, must not be who the passkey logs in.
  const otherClient = uniqueId('CO');
  createClient(otherClient);
  const other = createUser(otherClient, account.username);
  await logIn(page, other);
  await expectLoggedInAs(page, other);
  await logOut(page);
  await page.getByRole('button', { name: 'Log in with a passkey' }).click();
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await expectLoggedInAs(page, account);

  // Removed, it is listed no more, the password alone logs in again, and the passkey is refused.
  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByRole('listitem').filter({ hasText: 'My laptop' }).getByRole('button', { name: 'Remove' }).click();
  await expect(page.getByRole('status')).toHaveText('The passkey has been removed.');
  await expect(page.getByText('You have no passkeys yet.')).toBeVisible();
  await logOut(page);
  await page.getByRole('button', { name: 'Log in with a passkey' }).click();
  await expect(page.getByRole('alert')).toHaveText('The passkey could not be used. Please try again, or log in with your password.');
  await expect(page.getByRole('button', { name: 'Log out' })).toHaveCount(0);
  await logIn(page, account);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
});

test('the login form offers passkeys in the browser autofill', async ({ page }) => {
  await page.goto('/login');
  await expect(page.getByLabel('User name')).toHaveAttribute('autocomplete', 'username webauthn');
});
