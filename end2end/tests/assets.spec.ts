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
  // Nor the logged-in header's chunk (the idle warning): nobody is logged in here.
  expect(wasm.filter((path) => path.includes('session_nav'))).toEqual([]);

  // The main module holds no page's data either. `authorization_endpoint` is a field name that
  // only the client console's code reads (the result of "Test connection"): it lands in the main
  // module when the splitter gives up on laying out a data segment and leaves all of it there.
  const plain = await page.request.get(main[0], { headers: { 'accept-encoding': 'identity' } });
  const bytes = (await plain.body()).toString('latin1');
  expect(bytes.length).toBeGreaterThan(100_000);
  expect(bytes.startsWith('\0asm')).toBe(true);
  expect(bytes.includes('authorization_endpoint')).toBe(false);

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
