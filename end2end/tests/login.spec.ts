import { test, expect, logIn, createUser } from '../fixtures';

test('a user logs in with company ID, user name and password, and logs out', async ({ page, account }) => {
  await logIn(page, account);
  await expect(page).toHaveURL(/\/home$/);
  await expect(page.getByRole('heading', { name: /Logged in as Erika Mustermann/ })).toBeVisible();
  await expect(page.getByText(`${account.companyId} GmbH`)).toBeVisible();

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login\?notice=logged_out$/);
  await expect(page.getByRole('status')).toHaveText('You have been logged out.');
  await expect(page.getByLabel('Company ID')).toBeVisible();

  // Back must not show the logged-in page again.
  await page.goBack();
  await expect(page.getByLabel('Company ID')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Log out' })).toHaveCount(0);
  await expect(page).toHaveURL(/\/login/);
});

test('company ID and user name ignore case and surrounding spaces', async ({ page, account }) => {
  await logIn(page, { ...account, companyId: ` ${account.companyId.toLowerCase()} `, username: account.username.toUpperCase() });
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
});

test('a wrong password, an unknown user and an unknown company get the same message', async ({ page, account }) => {
  const attempts = [
    { ...account, password: 'not the right password' },
    { ...account, username: 'nobody' },
    { ...account, companyId: 'NO-SUCH-CO' },
  ];
  const messages: string[] = [];
  for (const attempt of attempts) {
    await logIn(page, attempt);
    const alert = page.getByRole('alert');
    await expect(alert).toBeVisible();
    messages.push((await alert.textContent()) ?? '');
    await expect(page).toHaveURL(/\/login$/);
  }
  expect(messages[0]).toBe('The company ID, user name or password is not correct.');
  expect(messages[1]).toBe(messages[0]);
  expect(messages[2]).toBe(messages[0]);
});

test('empty and malformed fields get a message that names the field', async ({ page }) => {
  await page.goto('/login');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText('Please enter your company ID.');
  await expect(page.getByLabel('Company ID')).toHaveAttribute('aria-invalid', 'true');

  await page.getByLabel('Company ID').fill('ACME GmbH');
  await page.getByLabel('User name').fill('erika');
  await page.getByLabel('Password', { exact: true }).fill('whatever');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText('Company ID may only contain letters, digits, - and _.');
});

test('the login page switches to German and remembers it', async ({ page, account }) => {
  await page.goto('/login');
  await page.getByRole('button', { name: 'Deutsch' }).click();
  await expect(page.getByLabel('Firmen-ID')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Mit SSO anmelden' })).toBeVisible();
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('lang', 'de');
  await page.getByLabel('Firmen-ID').fill(account.companyId);
  await page.getByLabel('Benutzername').fill(account.username);
  await page.getByLabel('Passwort', { exact: true }).fill('falsches Passwort');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText('Firmen-ID, Benutzername oder Passwort ist nicht korrekt.');
  await page.getByRole('button', { name: 'English' }).click();
  await expect(page.getByLabel('Company ID')).toBeVisible();
});

test('an administrator sees their role after login', async ({ page, account }) => {
  const admin = createUser(account.companyId, 'max.admin', { role: 'admin', firstName: 'Max', lastName: 'Admin' });
  await logIn(page, admin);
  await expect(page.getByRole('heading', { name: /Logged in as Max Admin/ })).toBeVisible();
  await expect(page.getByText('User administrator')).toBeVisible();
});

test('repeated failures make the next attempt wait, and the message says how long', async ({ page, account }) => {
  await logIn(page, { ...account, password: 'wrong once' });
  await expect(page.getByRole('alert')).toHaveText('The company ID, user name or password is not correct.');
  await page.getByLabel('Password', { exact: true }).fill('wrong twice');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText(
    /^The company ID, user name or password is not correct\. Please wait \d+ seconds? before the next attempt\.$/,
  );
});
