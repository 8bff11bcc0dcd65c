// promio.connect as the OpenID Provider of real relying parties: a web application built on npm
// openid-client (support/rp.mjs) and Apache's mod_auth_openidc (support/apache.ts), both
// registered with `promio-connect app create` and driven through Chromium. Every way the login
// page offers (password, password + TOTP, passkeys, SSO at the company's IdP) must end back at the
// application with an ID token that says who logged in and how.
import { test, expect, cli, createClient, createUser, logIn, totp, awayFromStepEdge, uniqueId, Account } from '../fixtures';
import type { CDPSession, Page } from '@playwright/test';
import { baseURL, idpClient, idpIssuer } from '../env';
import { RelyingParty, createApp, freePort, startRelyingParty } from '../support/relying-party';
import { apacheAvailable, startApache } from '../support/apache';

type Claims = Record<string, any>;

/** A regular expression for URLs that start with `url`. */
function startsWith(url: string): RegExp {
  const escaped = url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp('^' + escaped);
}

/** The login form of promio.connect, reached from an application: fills and submits it. */
async function fillLogin(page: Page, account: Pick<Account, 'companyId' | 'username' | 'password'>) {
  await expect(page).toHaveURL(startsWith(`${baseURL}/login`));
  await page.getByLabel('Company ID').fill(account.companyId);
  await page.getByLabel('User name').fill(account.username);
  await page.getByLabel('Password', { exact: true }).fill(account.password);
  await page.getByRole('button', { name: 'OK' }).click();
}

/** Back at the application's redirect URI: the ID token's claims and userinfo it shows. */
async function signedInAt(page: Page, rp: RelyingParty): Promise<{ claims: Claims; userinfo: Claims }> {
  await expect(page).toHaveURL(startsWith(`${rp.url}/cb`));
  await expect(page.locator('#claims, #error')).toBeVisible();
  const error = page.locator('#error');
  if (await error.count()) throw new Error(`the application says: ${await error.textContent()}`);
  return {
    claims: JSON.parse((await page.locator('#claims').textContent()) ?? ''),
    userinfo: JSON.parse((await page.locator('#userinfo').textContent()) ?? ''),
  };
}

/** The error the application got (authorization response or token endpoint): `error: description`. */
async function refusedAt(page: Page, rp: RelyingParty): Promise<string> {
  await expect(page).toHaveURL(startsWith(rp.url));
  await expect(page.locator('#error')).toBeVisible();
  return (await page.locator('#error').textContent()) ?? '';
}

async function logOutHere(page: Page) {
  await page.goto('/home');
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByLabel('Company ID')).toBeVisible();
}

let rp: RelyingParty;

test.beforeAll(async () => {
  rp = await startRelyingParty(`Test application ${uniqueId('RP')}`);
});

test.afterAll(() => {
  rp?.stop();
});

test('an application logs a person in with a password and learns who they are, not more', async ({ page, account }) => {
  // prompt=none without a session: the application hears login_required, and no form shows.
  await page.goto(`${rp.url}/login?prompt=none`);
  expect(await refusedAt(page, rp)).toMatch(/^login_required:/);

  await page.goto(`${rp.url}/login`);
  await fillLogin(page, account);
  const { claims, userinfo } = await signedInAt(page, rp);
  expect(claims.iss).toBe(baseURL);
  expect(claims.aud).toBe(rp.app.clientId);
  // sub is the stable opaque id, never the user name.
  expect(claims.sub).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  expect(claims.preferred_username).toBe(account.username);
  expect(claims.given_name).toBe('Erika');
  expect(claims.family_name).toBe('Mustermann');
  expect(claims.company_id).toBe(account.companyId);
  expect(claims.company_name).toBe(`${account.companyId} GmbH`);
  expect(claims.email).toBe(account.email);
  expect(claims.email_verified).toBe(true);
  expect(claims.amr).toEqual(['pwd']);
  expect(typeof claims.auth_time).toBe('number');
  expect(claims.sid).toBeTruthy();
  expect(claims.exp - claims.iat).toBe(3600);

  expect(userinfo.sub).toBe(claims.sub);
  expect(userinfo.preferred_username).toBe(account.username);
  expect(userinfo.email).toBe(account.email);
  expect(userinfo.company_id).toBe(account.companyId);
  await expect(page.locator('#refresh-token')).toHaveText('a refresh token');
});

test('refresh tokens rotate, and a used one presented again ends the whole family', async ({ page, account }) => {
  await page.goto(`${rp.url}/login`);
  await fillLogin(page, account);
  await signedInAt(page, rp);

  await page.goto(`${rp.url}/refresh`);
  const refreshed = JSON.parse((await page.locator('#refreshed').textContent()) ?? '');
  expect(refreshed.rotated).toBe(true);
  expect(String(refreshed.token_type).toLowerCase()).toBe('bearer');
  expect(refreshed.userinfo.preferred_username).toBe(account.username);

  // The refresh token used above, once more: refused, and the new one dies with it.
  await page.goto(`${rp.url}/refresh?reuse=1`);
  expect(await refusedAt(page, rp)).toMatch(/^invalid_grant:/);
  await page.goto(`${rp.url}/refresh`);
  expect(await refusedAt(page, rp)).toMatch(/^invalid_grant:/);
});

test('a second application gets its code without asking again; logging out from one ends the session', async ({ page, account }) => {
  const second = await startRelyingParty(`Second application ${uniqueId('RP')}`, { auth: 'post' });
  try {
    await page.goto(`${rp.url}/login`);
    await fillLogin(page, account);
    const first = (await signedInAt(page, rp)).claims;

    // The session exists: straight back to the second application, the login form never shows.
    const visited: string[] = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) visited.push(frame.url());
    });
    await page.goto(`${second.url}/login`);
    const { claims } = await signedInAt(page, second);
    expect(visited.filter((url) => url.startsWith(`${baseURL}/login`))).toEqual([]);
    expect(claims.aud).toBe(second.app.clientId);
    expect(claims.sub).toBe(first.sub);
    expect(claims.sid).toBe(first.sid);
    expect(claims.auth_time).toBe(first.auth_time);
    expect(claims.amr).toEqual(['pwd']);

    // RP-initiated logout: back at the application's post-logout page, and promio.connect asks
    // for the login again.
    await page.goto(`${rp.url}/logout`);
    await expect(page).toHaveURL(startsWith(`${rp.url}/bye`));
    await expect(page.locator('#bye')).toHaveText('logged out');
    await page.goto('/login');
    await expect(page).toHaveURL(/\/login$/);
    await expect(page.getByLabel('Company ID')).toBeVisible();
    await page.goto(`${second.url}/login?prompt=none`);
    expect(await refusedAt(page, second)).toMatch(/^login_required:/);
  } finally {
    second.stop();
  }
});

test('prompt=login asks for the login again even with a session', async ({ page, account }) => {
  await page.goto(`${rp.url}/login`);
  await fillLogin(page, account);
  const before = (await signedInAt(page, rp)).claims;

  await page.goto(`${rp.url}/login?prompt=login`);
  await fillLogin(page, account);
  const { claims } = await signedInAt(page, rp);
  expect(claims.sub).toBe(before.sub);
  expect(claims.sid).not.toBe(before.sid);
  expect(claims.auth_time).toBeGreaterThanOrEqual(before.auth_time);
});

/** Activates 2FA on the Security page; returns the secret key shown (as two-factor.spec.ts does). */
async function activateTotp(page: Page): Promise<string> {
  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByRole('button', { name: 'Activate two-factor authentication' }).click();
  const secret = await page.getByLabel('Secret key').inputValue();
  // The previous step's code (also accepted), so that the current one is still unused afterwards.
  await awayFromStepEdge(page);
  await page.getByLabel('Two-factor code').fill(totp(secret, -1));
  await page.getByRole('button', { name: 'Activate', exact: true }).click();
  await expect(page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem')).toHaveCount(10);
  return secret;
}

test('a login with a password and a TOTP code reaches the application with amr otp and mfa', async ({ page, account }) => {
  await logIn(page, account);
  const secret = await activateTotp(page);
  await logOutHere(page);

  await page.goto(`${rp.url}/login`);
  await fillLogin(page, account);
  await expect(page).toHaveURL(/\/login\/two-factor$/);
  await page.getByLabel('Two-factor code').fill(totp(secret));
  await page.getByRole('button', { name: 'OK' }).click();
  const { claims } = await signedInAt(page, rp);
  expect(claims.preferred_username).toBe(account.username);
  expect([...claims.amr].sort()).toEqual(['mfa', 'otp', 'pwd']);
});

/** Chromium's virtual authenticator, as in passkeys.spec.ts. */
async function virtualAuthenticator(page: Page): Promise<CDPSession> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return cdp;
}

test('passkeys reach the application: as the second factor (pwd hwk mfa) and alone (hwk)', async ({ page, account }) => {
  await virtualAuthenticator(page);
  await logIn(page, account);
  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(page.getByRole('status')).toHaveText('The passkey has been added. You can give it a name.');
  await logOutHere(page);

  // The password, then the passkey as the second factor.
  await page.goto(`${rp.url}/login`);
  await fillLogin(page, account);
  await expect(page.getByRole('heading', { name: 'Two-factor authentication' })).toBeVisible();
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  let { claims } = await signedInAt(page, rp);
  expect([...claims.amr].sort()).toEqual(['hwk', 'mfa', 'pwd']);
  await page.goto(`${rp.url}/logout`);
  await expect(page.locator('#bye')).toHaveText('logged out');

  // The passkey alone.
  await page.goto(`${rp.url}/login`);
  await expect(page).toHaveURL(startsWith(`${baseURL}/login`));
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  await page.getByRole('button', { name: 'Log in with a passkey' }).click();
  ({ claims } = await signedInAt(page, rp));
  expect(claims.preferred_username).toBe(account.username);
  expect(claims.company_id).toBe(account.companyId);
  expect(claims.amr).toEqual(['hwk']);
});

test('an SSO user logs in at the company IdP and ends at the application', async ({ page }) => {
  const companyId = uniqueId('SSO');
  const domain = `${companyId.toLowerCase()}.example`;
  createClient(companyId);
  cli([
    'client', 'sso', '--company-id', companyId, '--issuer', idpIssuer,
    '--client-id', idpClient.client_id, '--client-secret', idpClient.client_secret, '--domains', domain,
  ]);
  const user = createUser(companyId, 'jane', { password: null });

  await page.goto(`${rp.url}/login`);
  await expect(page).toHaveURL(startsWith(`${baseURL}/login`));
  await page.getByRole('button', { name: 'Login with SSO' }).click();
  await expect(page).toHaveURL(/\/sso$/);
  await page.getByLabel('Email address').fill(user.email);
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page).toHaveURL(startsWith(`${idpIssuer}/interaction/`));
  await page.locator('input[name="password"]').fill('the password at the company IdP');
  await page.getByRole('button', { name: 'Sign-in' }).click();

  const { claims } = await signedInAt(page, rp);
  expect(claims.preferred_username).toBe('jane');
  expect(claims.company_id).toBe(companyId);
  expect(claims.email).toBe(user.email);
  // promio.connect did not see how the IdP authenticated the person: no amr at all.
  expect(claims.amr).toBeUndefined();
});

test('an application bound to one company takes only that company’s users', async ({ page, account }) => {
  const bound = await startRelyingParty(`Bound application ${uniqueId('RP')}`, { companyId: account.companyId });
  try {
    const otherCompany = uniqueId('CO');
    createClient(otherCompany);
    const stranger = createUser(otherCompany, 'stranger');

    // The login page comes with the application's company filled in.
    await page.goto(`${bound.url}/login`);
    await expect(page).toHaveURL(startsWith(`${baseURL}/login`));
    await expect(page.getByLabel('Company ID')).toHaveValue(account.companyId);
    await fillLogin(page, stranger);
    expect(await refusedAt(page, bound)).toMatch(/^access_denied:/);
    // With that session, at once.
    await page.goto(`${bound.url}/login`);
    expect(await refusedAt(page, bound)).toMatch(/^access_denied:/);

    await logOutHere(page);
    await page.goto(`${bound.url}/login`);
    await fillLogin(page, account);
    const { claims } = await signedInAt(page, bound);
    expect(claims.company_id).toBe(account.companyId);
  } finally {
    bound.stop();
  }
});

test('Apache with mod_auth_openidc lets in whom promio.connect logged in', async ({ page, account }) => {
  if (!apacheAvailable()) {
    // CI installs them (make e2e-deps): a skip there would hide a failure.
    if (process.env.CI) throw new Error('apache2 or mod_auth_openidc is missing: run make e2e-deps');
    test.skip(true, 'needs apache2 and libapache2-mod-auth-openidc (make e2e-deps installs them)');
  }
  const port = await freePort();
  const app = createApp({
    name: `Apache ${uniqueId('AP')}`,
    redirectUris: [`http://localhost:${port}/protected/redirect_uri`],
  });
  const apache = await startApache({
    port,
    issuer: baseURL,
    clientId: app.clientId,
    clientSecret: app.clientSecret ?? '',
  });
  try {
    await page.goto(apache.protectedUrl);
    await fillLogin(page, account);
    await expect(page).toHaveURL(startsWith(apache.protectedUrl));
    await expect(page.getByRole('heading', { name: 'Protected by Apache' })).toBeVisible();
    await expect(page.locator('#username')).toHaveText(account.username);
    await expect(page.locator('#company')).toHaveText(account.companyId);
  } finally {
    apache.stop();
  }
});

test('Apache as configured by default (no PKCE) logs in once its registration allows that', async ({ page, account }) => {
  if (!apacheAvailable()) {
    if (process.env.CI) throw new Error('apache2 or mod_auth_openidc is missing: run make e2e-deps');
    test.skip(true, 'needs apache2 and libapache2-mod-auth-openidc (make e2e-deps installs them)');
  }
  const port = await freePort();
  const redirectUri = `http://localhost:${port}/protected/redirect_uri`;
  const app = createApp({
    name: `Apache without PKCE ${uniqueId('AP')}`,
    redirectUris: [redirectUri],
  });
  const apache = await startApache({
    port,
    issuer: baseURL,
    clientId: app.clientId,
    clientSecret: app.clientSecret ?? '',
    pkce: false,
  });
  try {
    // Registered as every application is, PKCE required: the request goes back refused, before
    // any login form. (mod_auth_openidc 2.4.12 then takes the error response's `iss` for a
    // third-party login and shows its own error page, so the refusal is read off the redirect.)
    const refused = page.waitForRequest((request) => request.url().startsWith(`${redirectUri}?`));
    await page.goto(apache.protectedUrl);
    const back = new URL((await refused).url()).searchParams;
    expect(back.get('error')).toBe('invalid_request');
    expect(back.get('error_description')).toContain('code_challenge');
    expect(back.get('iss')).toBe(baseURL);
    await expect(page.getByLabel('Company ID')).toHaveCount(0);

    cli(['app', 'set', '--client-id', app.clientId, '--pkce-required', 'false']);
    await page.goto(apache.protectedUrl);
    await fillLogin(page, account);
    await expect(page).toHaveURL(startsWith(apache.protectedUrl));
    await expect(page.getByRole('heading', { name: 'Protected by Apache' })).toBeVisible();
    await expect(page.locator('#username')).toHaveText(account.username);
  } finally {
    apache.stop();
  }
});
