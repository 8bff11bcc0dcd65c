import { defineConfig, devices } from '@playwright/test';
import { baseURL, externalServer, idpClient, idpPort, mailDir, port, serverBin, serverEnv, smtpPort, stateDir } from './env';

// Debian's Chromium: Playwright's own browser download cannot work on these machines.
const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// CI tests the server it has just built. An E2E_BASE_URL left in its environment would test
// another server and skip what needs the suite's own (the idle-timeout spec), so CI refuses it; by
// hand it stays allowed. (E2E_DATABASE_URL skips nothing: the fixtures reach SQLite and PostgreSQL.)
if (process.env.CI && process.env.E2E_BASE_URL) {
  throw new Error(
    `CI runs the end-to-end suite against the server it starts itself: unset E2E_BASE_URL (${process.env.E2E_BASE_URL})`,
  );
}

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  // A forgotten test.only would quietly skip the rest of the suite, wherever it runs.
  forbidOnly: true,
  reporter: [['list']],
  use: {
    baseURL,
    locale: 'en-US',
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: chromiumArgs },
      },
    },
  ],
  // The real server binary on a fresh SQLite database. A port that is already taken fails the run
  // (reuseExistingServer: false) rather than testing whatever answers there.
  // A real SMTP server (npm smtp-server) receives the mails; a real OpenID provider (npm
  // oidc-provider) is the SSO clients' identity provider.
  webServer: externalServer
    ? undefined
    : [
        {
          command: 'node support/smtp-sink.mjs',
          port: smtpPort,
          env: { E2E_SMTP_PORT: String(smtpPort), E2E_MAIL_DIR: mailDir },
          reuseExistingServer: false,
          timeout: 20_000,
        },
        {
          command: 'node support/oidc-idp.mjs',
          url: `http://127.0.0.1:${idpPort}/.well-known/openid-configuration`,
          env: { IDP_PORT: String(idpPort), IDP_CLIENTS: JSON.stringify([idpClient]) },
          reuseExistingServer: false,
          timeout: 20_000,
        },
        {
          command: `rm -rf '${stateDir}' && mkdir -p '${stateDir}' && exec '${serverBin}' serve`,
          // Checked on the address the server listens on (`localhost` may resolve to ::1 first).
          url: `http://127.0.0.1:${port}/health/ready`,
          env: serverEnv(),
          reuseExistingServer: false,
          timeout: 60_000,
          stdout: 'pipe',
          stderr: 'pipe',
        },
      ],
});
