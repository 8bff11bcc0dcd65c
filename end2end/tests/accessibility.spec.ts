import { test, expect, logIn, createUser, uniqueId } from '../fixtures';
import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';

/** The serious and critical WCAG 2.2 A/AA violations axe-core finds on the page as it is now. */
async function violations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'])
    .analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

test('axe-core finds no serious or critical violation on any page', async ({ page, account }) => {
  const found: Record<string, string[]> = {};
  const check = async (name: string) => {
    await page.waitForLoadState('networkidle');
    found[name] = await violations(page);
  };
  for (const path of ['/login', '/forgot-password', '/sso', '/set-password?token=nothing']) {
    await page.goto(path);
    await check(path);
  }
  const admin = createUser(account.companyId, 'chef', { role: 'admin' });
  await logIn(page, admin);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await check('/home');
  for (const path of ['/security', '/admin/users', '/admin/audit']) {
    await page.goto(path);
    await check(path);
  }
  await page.getByRole('button', { name: 'Log out' }).click();
  const ops = createUser('promio', `ops${uniqueId('').toLowerCase()}`, { role: 'operator' });
  await logIn(page, ops);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  await page.goto('/operator/clients');
  await check('/operator/clients');
  const failing = Object.entries(found).filter(([, v]) => v.length > 0);
  expect(failing, JSON.stringify(failing, null, 2)).toEqual([]);
});
