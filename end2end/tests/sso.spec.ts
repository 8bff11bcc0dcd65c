import { test, expect, cli, createClient, createUser, uniqueId } from '../fixtures';
import { idpClient, idpIssuer } from '../env';

/** A client that logs in through the suite's identity provider, with one user. */
function ssoClient() {
  const companyId = uniqueId('SSO');
  const domain = `${companyId.toLowerCase()}.example`;
  createClient(companyId);
  cli([
    'client', 'sso', '--company-id', companyId, '--issuer', idpIssuer,
    '--client-id', idpClient.client_id, '--client-secret', idpClient.client_secret, '--domains', domain,
  ]);
  const user = createUser(companyId, 'jane', { password: null });
  return { companyId, email: user.email };
}

async function loginWithSso(page: import('@playwright/test').Page, email: string) {
  await page.goto('/login');
  await page.getByRole('button', { name: 'Login with SSO' }).click();
  await expect(page).toHaveURL(/\/sso$/);
  await page.getByLabel('Email address').fill(email);
  await page.getByRole('button', { name: 'OK' }).click();
}

test('Login with SSO: the IdP asks once, then logs the person in without asking', async ({ page }) => {
  const { companyId, email } = ssoClient();

  await loginWithSso(page, email);
  // The identity provider's own login form, with the email as login hint.
  await expect(page).toHaveURL(new RegExp(`^${idpIssuer}/interaction/`));
  await expect(page.locator('input[name="login"]')).toHaveValue(email);
  await page.locator('input[name="password"]').fill('the password at the company IdP');
  await page.getByRole('button', { name: 'Sign-in' }).click();

  await expect(page).toHaveURL(/\/home$/);
  await expect(page.getByText(`${companyId} GmbH`)).toBeVisible();
  // No two-factor authentication for SSO users: their company's IdP does that.
  await page.getByRole('link', { name: 'Security' }).click();
  // The absence below means something only once the Security page has rendered its 2FA section,
  // which for SSO users says why there is nothing to set up.
  await expect(page).toHaveURL(/\/security$/);
  await expect(page.getByRole('heading', { name: 'Security', level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Two-factor authentication', level: 2 })).toBeVisible();
  await expect(page.getByText('its identity provider handles two-factor authentication')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Activate two-factor authentication' })).toHaveCount(0);

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login\?notice=logged_out$/);

  // The IdP still has its session: no form this time.
  await loginWithSso(page, email);
  await expect(page).toHaveURL(/\/home$/);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
});

test('an SSO user cannot log in with a password, and an unknown domain is named', async ({ page }) => {
  const { companyId } = ssoClient();
  await page.goto('/login');
  await page.getByLabel('Company ID').fill(companyId);
  await page.getByLabel('User name').fill('jane');
  await page.getByLabel('Password', { exact: true }).fill('any password at all');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toContainText('Login with SSO');
  await expect(page).toHaveURL(/\/login$/);

  await loginWithSso(page, 'someone@no-sso-here.example');
  await expect(page.getByRole('alert')).toContainText('Single sign-on is not set up for this email address');
  await expect(page).toHaveURL(/\/sso$/);
});

test('someone the IdP knows but promio.connect does not gets a clear page and no session', async ({ page }) => {
  const { companyId } = ssoClient();
  await loginWithSso(page, `stranger@${companyId.toLowerCase()}.example`);
  await expect(page).toHaveURL(new RegExp(`^${idpIssuer}/interaction/`));
  await page.locator('input[name="password"]').fill('x');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await expect(page).toHaveURL(/\/sso\?error=not_registered$/);
  await expect(page.getByRole('alert')).toContainText('no active promio.connect account');
  await page.goto('/home');
  await expect(page.getByRole('button', { name: 'Log out' })).toHaveCount(0);
});
