// The customer's identity provider in the tests: npm oidc-provider (OpenID Certified) on loopback,
// with its development login form (any login name is accepted as the account; it becomes the email
// claim) and consent granted without asking, as a company's own IdP does for its own apps.
//
// Environment:
//   IDP_PORT     port to listen on (0 or unset: any free port)
//   IDP_CLIENTS  JSON array of static clients: [{client_id, client_secret, redirect_uris}]
// Clients can also register themselves (dynamic client registration at /reg), which the Rust
// integration tests use: each test server has its own redirect URI.
//
// The first line on stdout is {"issuer": "http://127.0.0.1:PORT"} once it listens. With
// IDP_WATCH_STDIN=1 it exits when its standard input closes, so it never outlives the test process
// that started it.
//
// Test hooks (never part of a real IdP):
// - POST /__test/tamper {client_id, aud?, exp?, nonce?, iss?, sub?, email?, email_verified?,
//   unsigned?} makes the next ID token issued to that client carry the given claims, re-signed with
//   the provider's own key (or with a foreign key when unsigned is true) — the crafted tokens that
//   the ID token checks must refuse.
// - POST /__test/claims {account, claims} overrides claims of one account (the login name) from
//   then on, in userinfo (e.g. {"email_verified": false}); not sub.
import http from 'node:http';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.env.IDP_PORT ?? 0);
const staticClients = JSON.parse(process.env.IDP_CLIENTS ?? '[]');

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
const { privateKey: foreignKey } = await jose.generateKeyPair('RS256');

const tampering = new Map();
const accountClaims = new Map();

const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: staticClients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['promio-connect test idp cookie key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified', 'upn'],
    profile: ['given_name', 'family_name', 'name'],
  },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
  },
  pkce: { required: () => true },
  ttl: { IdToken: 3600, AccessToken: 3600, AuthorizationCode: 60, Session: 86400, Interaction: 3600, Grant: 86400 },
  async findAccount(ctx, id) {
    const email = String(id).trim();
    const local = email.split('@')[0] ?? email;
    return {
      accountId: email,
      async claims() {
        return {
          sub: email,
          email,
          email_verified: true,
          // Differs from email, so that a test can tell which claim was read.
          upn: `upn.${email}`,
          given_name: local.charAt(0).toUpperCase() + local.slice(1),
          family_name: 'Tester',
          name: `${local} Tester`,
          ...(accountClaims.get(email) ?? {}),
          sub: email,
        };
      },
    };
  },
  // The company's own IdP does not ask its employees for consent to its own apps.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});
provider.proxy = false;

// Rewrites the ID token of a token response when the test asked for it.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  const clientId = ctx.oidc?.client?.clientId;
  const change = clientId && tampering.get(clientId);
  if (!change) return;
  tampering.delete(clientId);
  const claims = jose.decodeJwt(ctx.body.id_token);
  for (const key of ['aud', 'exp', 'nonce', 'iss', 'sub', 'email', 'email_verified']) {
    if (change[key] !== undefined) claims[key] = change[key];
  }
  const key = change.unsigned ? foreignKey : privateKey;
  ctx.body = {
    ...ctx.body,
    id_token: await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid }).sign(key),
  };
});

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.method === 'POST' && (req.url === '/__test/tamper' || req.url === '/__test/claims')) {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      try {
        const change = JSON.parse(body);
        if (req.url === '/__test/tamper') {
          tampering.set(change.client_id, change);
        } else {
          accountClaims.set(String(change.account), change.claims ?? {});
        }
        res.writeHead(204).end();
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
    return;
  }
  callback(req, res);
});

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
if (process.env.IDP_WATCH_STDIN === '1') {
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
}
process.on('SIGTERM', () => process.exit(0));
