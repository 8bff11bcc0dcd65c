import { test, expect, logIn, createUser, createClient, uniqueId, waitForMail, linkIn, expireLinks, setClient } from '../fixtures';

const NEW_PASSWORD = 'violet orbit canvas thunder';

test('an admin creates a user, the mail arrives, its link sets the password, the user logs in', async ({ page, account }) => {
  const admin = createUser(account.companyId, 'chef', { role: 'admin', firstName: 'Clara', lastName: 'Chef' });
  await logIn(page, admin);
  await page.getByRole('link', { name: 'User administration' }).click();
  await expect(page.getByRole('heading', { name: 'User administration' })).toBeVisible();

  const since = Date.now();
  await page.getByRole('button', { name: 'New user' }).click();
  await page.getByLabel('First name').fill('Max');
  await page.getByLabel('Last name').fill('Neu');
  await page.getByLabel('Email address').fill(`max.neu@${account.companyId.toLowerCase()}.example`);
  await page.getByLabel('User name').fill('max.neu');
  await page.getByLabel('Role').selectOption('user');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status')).toHaveText('The user has been created and the registration mail has been sent.');
  const row = page.getByRole('row', { name: /max\.neu/ });
  await expect(row.getByText('Invited')).toBeVisible();
  await expect(row.getByText(/Registration link valid until/)).toBeVisible();

  const mail = await waitForMail(`max.neu@${account.companyId.toLowerCase()}.example`, { since });
  expect(mail.subject).toBe('Your promio.connect account');
  expect(mail.text).toContain(`Company ID: ${account.companyId}`);
  expect(mail.text).toMatch(/valid until \d{1,2} \w+ \d{4}, \d\d:\d\d CES?T/);
  const link = linkIn(mail);
  expect(link.startsWith(`${new URL(page.url()).origin}/set-password?token=`)).toBe(true);

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto(link);

  await expect(page.getByRole('heading', { name: 'Set your password' })).toBeVisible();
  await expect(page.getByText(/This link is valid until/)).toBeVisible();
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Repeat new password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page).toHaveURL(/\/login\?notice=password_set$/);
  await expect(page.getByRole('status')).toHaveText('Your password has been set. You can log in now.');

  await logIn(page, { companyId: account.companyId, username: 'max.neu', password: NEW_PASSWORD });
  await expect(page.getByRole('heading', { name: /Logged in as Max Neu/ })).toBeVisible();

  // The link is single use.
  await page.goto(link);
  await expect(page.getByRole('status')).toHaveText('This link has already been used. You can log in with your password.');
});

test('a too short or mismatched new password is refused with its reason', async ({ page }) => {
  const companyId = uniqueId('CO');
  createClient(companyId);
  const since = Date.now();
  createUser(companyId, 'paula', { password: null });
  const link = linkIn(await waitForMail(`paula@${companyId.toLowerCase()}.example`, { since }));
  await page.goto(link);
  await page.getByLabel('New password', { exact: true }).fill('too short');
  await page.getByLabel('Repeat new password').fill('too short');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText('New password must be at least 15 characters long.');
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Repeat new password').fill(`${NEW_PASSWORD}!`);
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toHaveText('The two passwords are not the same.');
});

test('forgot password: the same confirmation, a mail, a new password', async ({ page, account }) => {
  await page.goto('/login');
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  const since = Date.now();
  await page.getByLabel('Company ID').fill(account.companyId);
  await page.getByLabel('User name').fill(account.username);
  await page.getByRole('button', { name: 'OK' }).click();
  const confirmation = 'If the account exists, a mail with a link to choose a new password is on its way. Please check your inbox.';
  await expect(page.getByRole('status')).toHaveText(confirmation);

  const mail = await waitForMail(account.email, { since, subject: /Reset your promio.connect password/ });
  await page.goto(linkIn(mail));
  await expect(page.getByRole('heading', { name: 'Choose a new password' })).toBeVisible();
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Repeat new password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('status')).toHaveText('Your password has been set. You can log in now.');
  await logIn(page, { ...account, password: NEW_PASSWORD });
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();

  // An unknown account gets the very same answer.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.goto('/forgot-password');
  await page.getByLabel('Company ID').fill(account.companyId);
  await page.getByLabel('User name').fill('nobody-here');
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('status')).toHaveText(confirmation);
});

test('the Security page changes the password with the current one; the other browser is logged out', async ({ page, browser, account }) => {
  const other = await browser.newPage();
  await logIn(other, account);
  await expect(other.getByRole('button', { name: 'Log out' })).toBeVisible();

  await logIn(page, account);
  await page.getByRole('link', { name: 'Security' }).click();
  await expect(page.getByRole('heading', { name: 'Password', exact: true })).toBeVisible();
  // The form opens with its button: until then the page has no password fields.
  await expect(page.getByLabel('Current password')).toHaveCount(0);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByLabel('Current password').fill('not the password at all');
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Repeat new password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByRole('alert')).toHaveText('The password is not correct.');

  const since = Date.now();
  await page.getByLabel('Current password').fill(account.password);
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Repeat new password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByRole('status')).toHaveText(
    'Your password was changed. Your other sessions have ended; a mail tells you of the change.',
  );
  await expect(page.getByLabel('Current password')).toHaveCount(0);
  await waitForMail(account.email, { since, subject: /password of your promio.connect account was changed/ });

  await other.goto('/security');
  await expect(other).toHaveURL(/\/login/);
  await page.getByRole('button', { name: 'Log out' }).click();
  await logIn(page, { ...account, password: NEW_PASSWORD });
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await other.close();
});

test('an expired registration link is refused with its message', async ({ page }) => {
  const companyId = uniqueId('CO');
  createClient(companyId);
  setClient(companyId, { 'registration-link-hours': '2' });
  const since = Date.now();
  const user = createUser(companyId, 'late', { password: null });
  const mail = await waitForMail(user.email, { since });
  expect(mail.text).toMatch(/valid until/);
  expireLinks(user.email);
  await page.goto(linkIn(mail));
  await expect(page.getByRole('status')).toHaveText(
    "This link has expired. Please ask your company's user administrator to send you a new registration mail.",
  );
  await expect(page.getByLabel('New password', { exact: true })).toHaveCount(0);
});

test('an admin deactivates a user, who can no longer log in', async ({ page, account }) => {
  const admin = createUser(account.companyId, 'chef', { role: 'admin' });
  await logIn(page, admin);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await page.goto('/admin/users');

  const row = page.getByRole('row', { name: new RegExp(account.username) });
  await row.getByRole('button', { name: 'Deactivate' }).click();
  await expect(page.getByRole('status')).toHaveText('The user has been deactivated and logged out everywhere.');
  await expect(row.getByText('Deactivated')).toBeVisible();
  await page.getByRole('button', { name: 'Log out' }).click();
  await logIn(page, account);
  await expect(page.getByRole('alert')).toHaveText('The company ID, user name or password is not correct.');
});
