// Where the suite's server runs and how the fixtures reach its database. Shared by the config
// (which starts the server) and the fixtures (which call the CLI against the same database).
import path from 'node:path';

const root = path.resolve(__dirname, '..');

export const port = Number(process.env.E2E_PORT ?? 3100);
/** Set E2E_BASE_URL to test a server that is already running (see README.md). */
export const externalServer = !!process.env.E2E_BASE_URL;
// `localhost`, not 127.0.0.1: passkeys need a domain name as their relying party (WebAuthn refuses
// IP addresses), and browsers treat http://localhost as a secure context.
export const baseURL = process.env.E2E_BASE_URL ?? `http://localhost:${port}`;
export const stateDir = process.env.E2E_STATE_DIR ?? path.join(__dirname, '.state');
export const serverBin = process.env.E2E_SERVER_BIN ?? path.join(root, 'target', 'debug', 'promio-connect');
export const smtpPort = Number(process.env.E2E_SMTP_PORT ?? 2525);
/** The customer's identity provider (npm oidc-provider, support/oidc-idp.mjs). */
export const idpPort = Number(process.env.E2E_IDP_PORT ?? 4010);
export const idpIssuer = process.env.E2E_IDP_ISSUER ?? `http://127.0.0.1:${idpPort}`;
/** The client the suite's server is registered as at that provider. */
export const idpClient = {
  client_id: 'promio-connect-e2e',
  client_secret: 'e2e-client-secret-that-is-long-enough-0123456789',
  redirect_uris: [`${baseURL}/sso/callback`],
};
/** Where the SMTP sink writes each received mail as JSON. */
export const mailDir = process.env.E2E_MAIL_DIR ?? path.join(__dirname, '.mail');
export const siteRoot = process.env.E2E_SITE_ROOT ?? path.join(root, 'target', 'site');

/** The suite's database: its own SQLite file, or E2E_DATABASE_URL (that of a running server). */
export const databaseUrl = process.env.E2E_DATABASE_URL ?? `sqlite://${path.join(stateDir, 'e2e.db')}?mode=rwc`;
/** The SQLite file of the suite's database, when it is SQLite (`undefined` on PostgreSQL). */
export const sqliteFile = databaseUrl.startsWith('sqlite:')
  ? databaseUrl.replace(/^sqlite:(\/\/)?/, '').replace(/\?.*$/, '')
  : undefined;

/** The environment of the server and of every CLI call the fixtures make. */
export function serverEnv(): Record<string, string> {
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    DATA_DIR: stateDir,
    SMTP_URL: process.env.E2E_SMTP_URL ?? `smtp://127.0.0.1:${smtpPort}`,
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
    // The suite's identity provider (support/oidc-idp.mjs) listens on plain http on loopback;
    // the CLI's `client sso` checks the issuer too.
    SSO_ALLOW_HTTP_ISSUER: 'true',
  };
  if (!externalServer) {
    Object.assign(env, {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      PUBLIC_URL: baseURL,
      LEPTOS_OUTPUT_NAME: 'promio-connect',
      LEPTOS_SITE_ROOT: siteRoot,
      LEPTOS_SITE_PKG_DIR: 'pkg',
    });
  }
  return env;
}
