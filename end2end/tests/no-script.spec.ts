// The login for everyone: with JavaScript disabled (a proxy that drops WASM, a slow link, a
// browser without script), the login, its second step, forgotten password, the set-password link,
// the SSO email step and the language switch work as plain forms: POST, then a redirect.
import {
  test, expect, logIn, cli, createClient, createUser, uniqueId, waitForMail, linkIn, totp, awayFromStepEdge,
} from '../fixtures';
import { baseURL, idpClient, idpIssuer } from '../env';

test.use({ javaScriptEnabled: false });

test('a failed login keeps what was typed but the password, focuses the message, and the next one lands on home', async ({ page, account }) => {
  await page.goto('/login');
  await page.getByLabel('Company ID').fill(account.companyId);
  await page.getByLabel('User name').fill(account.username);
  await page.getByLabel('Password', { exact: true }).fill('not the right password');
  // Nothing waits for a script that never comes.
  await expect(page.getByRole('button', { name: 'OK' })).toBeEnabled();
  // The browser itself posts the form (a page load, not a script's fetch), and the server
  // answers with a redirect.
  const posted = page.waitForRequest((r) => r.method() === 'POST' && r.isNavigationRequest());
  await page.getByRole('button', { name: 'OK' }).click();
  const post = await posted;
  expect(new URL(post.url()).pathname).toBe('/login');
  expect((await post.response())?.status()).toBe(303);

  // Back on the login page's own address, with the message focused and the values kept.
  await expect(page).toHaveURL(/\/login$/);
  const alert = page.getByRole('alert');
  await expect(alert).toHaveText('The company ID, user name or password is not correct.');
  await expect(alert).toBeFocused();
  await expect(page.getByLabel('Company ID')).toHaveValue(account.companyId);
  await expect(page.getByLabel('User name')).toHaveValue(account.username);
  await expect(page.getByLabel('Password', { exact: true })).toHaveValue('');

  // A reload starts afresh: the answer was for that one response.
  await page.reload();
  await expect(page.getByRole('alert')).toHaveCount(0);

  await page.getByLabel('Company ID').fill(account.companyId);
  await page.getByLabel('User name').fill(account.username);
  await page.getByLabel('Password', { exact: true }).fill(account.password);
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page).toHaveURL(/\/home$/);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();

  // Logging out is a plain form too; the browser remembers the company ID, and only that.
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login\?notice=logged_out$/);
  await expect(page.getByLabel('Company ID')).toHaveValue(account.companyId);
  await expect(page.getByLabel('User name')).toHaveValue('');
  const remembered = (await page.context().cookies()).filter((c) => c.name === 'promio_company');
  expect(remembered.map((c) => c.value)).toEqual([account.companyId]);
});

test('a field problem points the field to the message', async ({ page }) => {
  await page.goto('/login');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText('Please enter your company ID.');
  const field = page.getByLabel('Company ID');
  await expect(field).toHaveAttribute('aria-invalid', 'true');
  await expect(field).toHaveAttribute('aria-describedby', 'form-error');
  await expect(page.locator('#form-error')).toHaveText('Please enter your company ID.');
});

test('the second step takes a code without script', async ({ page, browser, account }) => {
  // 2FA is set up with script (the QR code page); the login after it without.
  const setup = await (await browser.newContext({ baseURL, locale: 'en-US', javaScriptEnabled: true })).newPage();
  await logIn(setup, account);
  await setup.getByRole('link', { name: 'Security' }).click();
  await setup.getByRole('button', { name: 'Activate two-factor authentication' }).click();
  const secret = await setup.getByLabel('Secret key').inputValue();
  // The previous step's code, so that the current one is still unused for the login below.
  await awayFromStepEdge(setup);
  await setup.getByLabel('Two-factor code').fill(totp(secret, -1));
  await setup.getByRole('button', { name: 'Activate', exact: true }).click();
  await expect(setup.getByRole('list', { name: 'Recovery codes' })).toBeVisible();
  await setup.context().close();

  await logIn(page, account);
  await expect(page).toHaveURL(/\/login\/two-factor$/);
  // A code of neither step in the window (six zeros, unless that is one of them).
  const accepted = [totp(secret), totp(secret, -1)];
  await page.getByLabel('Two-factor code').fill(['000000', '111111', '222222'].find((c) => !accepted.includes(c))!);
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page).toHaveURL(/\/login\/two-factor$/);
  await expect(page.getByRole('alert')).toHaveText('The two-factor code is not correct or has already been used.');
  await expect(page.getByRole('alert')).toBeFocused();
  await page.getByLabel('Two-factor code').fill(totp(secret));
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page).toHaveURL(/\/home$/);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
});

test('forgot password and the link from the mail work without script', async ({ page, account }) => {
  await page.goto('/login');
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.getByLabel('Company ID').fill(account.companyId);
  await page.getByLabel('User name').fill(account.username);
  const since = Date.now();
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('status')).toHaveText(
    'If the account exists, a mail with a link to choose a new password is on its way. Please check your inbox.',
  );

  const link = linkIn(await waitForMail(account.email, { since }));
  await page.goto(link);
  await page.getByLabel('New password', { exact: true }).fill('violet orbit canvas thunder');
  await page.getByLabel('Repeat new password').fill('violet orbit canvas thunderstorm');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText('The two passwords are not the same.');
  await expect(page.getByLabel('Repeat new password')).toHaveAttribute('aria-invalid', 'true');
  expect(page.url()).toBe(link);

  await page.getByLabel('New password', { exact: true }).fill('violet orbit canvas thunder');
  await page.getByLabel('Repeat new password').fill('violet orbit canvas thunder');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page).toHaveURL(/\/login\?notice=password_set$/);
  await expect(page.getByRole('status')).toHaveText('Your password has been set. You can log in now.');
  await logIn(page, { ...account, password: 'violet orbit canvas thunder' });
  await expect(page).toHaveURL(/\/home$/);
});

test('the SSO email step sends the browser to the identity provider without script', async ({ page }) => {
  const companyId = uniqueId('SSO');
  const domain = `${companyId.toLowerCase()}.example`;
  createClient(companyId);
  cli([
    'client', 'sso', '--company-id', companyId, '--issuer', idpIssuer,
    '--client-id', idpClient.client_id, '--client-secret', idpClient.client_secret, '--domains', domain,
  ]);
  const user = createUser(companyId, 'jane', { password: null });

  await page.goto('/sso');
  await page.getByLabel('Email address').fill('max@nowhere-sso.example');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page).toHaveURL(/\/sso$/);
  await expect(page.getByRole('alert')).toHaveText(
    'Single sign-on is not set up for this email address. Please check the address, or log in with your company ID, user name and password.',
  );
  await expect(page.getByLabel('Email address')).toHaveValue('max@nowhere-sso.example');

  await page.getByLabel('Email address').fill(user.email);
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page).toHaveURL(new RegExp(`^${idpIssuer}/interaction/`));
  await page.locator('input[name="password"]').fill('the password at the company IdP');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await expect(page).toHaveURL(/\/home$/);
  await expect(page.getByText(`${companyId} GmbH`)).toBeVisible();
});

test('the language switch works without script', async ({ page }) => {
  await page.goto('/forgot-password');
  await page.getByRole('button', { name: 'Deutsch' }).click();
  await expect(page).toHaveURL(/\/forgot-password$/);
  await expect(page.getByLabel('Firmen-ID')).toBeVisible();
  await expect(page.locator('html')).toHaveAttribute('lang', 'de');
  await page.getByRole('button', { name: 'English' }).click();
  await expect(page.getByLabel('Company ID')).toBeVisible();
});
