// The login and the consoles on a phone, 360 CSS pixels wide: nothing wider than the screen,
// every control at least 24 x 24, tables shown as lists of cards. Screenshots of each page are
// attached to the report; the login page is also compared with its committed screenshot.
import { test, expect, logIn, createUser, uniqueId } from '../fixtures';
import type { Page, TestInfo } from '@playwright/test';

test.use({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });

/** Checks the page as it is now, and attaches its screenshot. */
async function fits(page: Page, testInfo: TestInfo, name: string) {
  await page.waitForLoadState('networkidle');
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, `${name}: nothing wider than the screen`).toBeLessThanOrEqual(0);
  // Every visible control, and every link that stands on its own (not in running text).
  const small = await page.evaluate(() => {
    const found: string[] = [];
    const controls = document.querySelectorAll<HTMLElement>(
      'button, input:not([type="hidden"]), select, textarea, .alternatives a, .session a, .topbar a',
    );
    for (const el of controls) {
      const box = el.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      if (box.width < 24 || box.height < 24) {
        found.push(`${el.tagName} "${(el.textContent ?? '').trim() || el.id}" ${box.width}x${box.height}`);
      }
      if (box.right > document.documentElement.clientWidth + 0.5) {
        found.push(`${el.tagName} "${(el.textContent ?? '').trim() || el.id}" outside the screen`);
      }
    }
    return found;
  });
  expect(small, `${name}: targets of 24 x 24 within the screen`).toEqual([]);
  await testInfo.attach(`${name} at 360 px`, {
    body: await page.screenshot({ fullPage: true }),
    contentType: 'image/png',
  });
}

/** Tables are lists of cards here: each row a block, each cell labelled, none cut off. */
async function tableIsAList(page: Page, name: string) {
  const rows = page.locator('table.users tbody tr');
  await expect(rows.first()).toBeVisible();
  const layout = await rows.first().evaluate((row) => {
    const cells = Array.from(row.querySelectorAll('td'));
    return {
      display: getComputedStyle(row).display,
      labelled: cells.filter((c) => c.dataset.label).length,
      cells: cells.length,
      header: getComputedStyle(row.closest('table')!.querySelector('thead')!).position,
    };
  });
  expect(layout.display, `${name}: a row is a card`).toBe('block');
  expect(layout.header, `${name}: the header row is for screen readers only`).toBe('absolute');
  expect(layout.labelled, `${name}: the cells say what they are`).toBeGreaterThanOrEqual(layout.cells - 1);
}

test('the login pages at 360 px', async ({ page }, testInfo) => {
  await page.goto('/login');
  await fits(page, testInfo, 'login');
  await expect(page).toHaveScreenshot('login-360.png', { fullPage: true, maxDiffPixelRatio: 0.02 });
  await page.getByRole('button', { name: 'OK' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await fits(page, testInfo, 'login with an error');
  for (const path of ['/forgot-password', '/sso']) {
    await page.goto(path);
    await fits(page, testInfo, path);
  }
});

test('the consoles at 360 px', async ({ page, account }, testInfo) => {
  const admin = createUser(account.companyId, 'chef', { role: 'admin' });
  await logIn(page, admin);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await fits(page, testInfo, 'home');
  await page.goto('/admin/users');
  await tableIsAList(page, 'users');
  await fits(page, testInfo, 'users');
  await page.getByRole('button', { name: 'New user' }).click();
  await fits(page, testInfo, 'new user form');
  await page.goto('/admin/audit');
  await tableIsAList(page, 'audit');
  await fits(page, testInfo, 'audit');
  await page.goto('/security');
  await tableIsAList(page, 'sessions');
  await fits(page, testInfo, 'security');
  await page.getByRole('button', { name: 'Log out' }).click();

  const ops = createUser('promio', `ops${uniqueId('').toLowerCase()}`, { role: 'operator' });
  await logIn(page, ops);
  // The login's own navigation ends first (a navigation started before it would be cut off).
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await page.goto('/operator/clients');
  await tableIsAList(page, 'clients');
  await fits(page, testInfo, 'clients');
});
