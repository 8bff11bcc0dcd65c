import { test, expect } from '@playwright/test';

// The UI's WASM is split: the login page needs only the main module; every other page's code is a
// chunk fetched when that page is first shown. Files with hashed names may be cached for a year.
test('the login page loads no page chunk; another page fetches its own; hashed files are cached for a year', async ({ page }) => {
  const wasm: string[] = [];
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (path.startsWith('/pkg/') && path.endsWith('.wasm')) wasm.push(path);
  });

  await page.goto('/login');
  // Once the script has taken over, the link below is followed in the browser (before, it would
  // be a page load, which fetches no chunk).
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  const main = wasm.filter((path) => /^\/pkg\/promio-connect\.[\w-]{22}\.wasm$/.test(path));
  expect(main).toHaveLength(1);
  expect(wasm.filter((path) => path.includes('_route_view_'))).toEqual([]);

  // Navigating in the browser (no page load) fetches the forgot-password page's chunk, which works.
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await expect(page.getByRole('heading', { name: 'Forgot your password?' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'OK' })).toBeVisible();
  expect(wasm.filter((path) => path.includes('_route_view_'))).toEqual([
    expect.stringContaining('forgot_password_route_view_'),
  ]);

  const served = await page.request.get(main[0], { headers: { 'accept-encoding': 'br' } });
  expect(served.status()).toBe(200);
  expect(served.headers()['cache-control']).toBe('public, max-age=31536000, immutable');
  expect(served.headers()['content-type']).toBe('application/wasm');
});
