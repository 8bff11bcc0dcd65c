// A relying party in the tests: a tiny web application that logs people in through promio.connect
// with npm openid-client (v6, OpenID Certified), as one of the product's applications would. Nothing
// in it knows promio.connect beyond its issuer URL: everything else comes from discovery.
//
// Environment:
//   RP_PORT           port to listen on (127.0.0.1); the redirect URI is http://localhost:RP_PORT/cb
//   RP_ISSUER         promio.connect's issuer (its PUBLIC_URL)
//   RP_CLIENT_ID      the client_id `promio-connect app create` printed
//   RP_CLIENT_SECRET  its client_secret (unset or empty: a public client)
//   RP_AUTH           `basic` (client_secret_basic, the default) or `post` (client_secret_post)
//   RP_SCOPE          default `openid profile email offline_access`
//
// Routes (each browser has its own state, in a cookie named after the port: cookies do not tell
// ports apart, and a test may run two of these side by side):
//   /login    starts the code flow (PKCE S256, state, nonce); `prompt`, `max_age` and
//             `login_hint` in its query are passed on
//   /cb       finishes it: the ID token's claims in <pre id="claims">, userinfo in
//             <pre id="userinfo">; any error in <p id="error"> as `error: description`
//   /refresh  the refresh token grant (the new refresh token replaces the old one): the outcome in
//             <pre id="refreshed">; /refresh?reuse=1 presents the previous, already used one
//   /logout   to the end_session_endpoint with id_token_hint, post_logout_redirect_uri /bye, state
//   /bye      <p id="bye">logged out</p> when the state came back
//
// The first line on stdout is {"rp": "http://localhost:PORT"} once it listens.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';

const port = Number(process.env.RP_PORT);
const issuer = process.env.RP_ISSUER;
const clientId = process.env.RP_CLIENT_ID;
const clientSecret = process.env.RP_CLIENT_SECRET || undefined;
const scope = process.env.RP_SCOPE ?? 'openid profile email offline_access';
if (!port || !issuer || !clientId) {
  process.stderr.write('rp.mjs needs RP_PORT, RP_ISSUER and RP_CLIENT_ID\n');
  process.exit(2);
}
const origin = `http://localhost:${port}`;
const redirectUri = `${origin}/cb`;
const postLogoutRedirectUri = `${origin}/bye`;
const cookieName = `rp_${port}`;

const auth = !clientSecret
  ? client.None()
  : process.env.RP_AUTH === 'post'
    ? client.ClientSecretPost(clientSecret)
    : client.ClientSecretBasic(clientSecret);
// The suite's promio.connect runs on plain http on localhost: openid-client refuses that unless told.
const config = await client.discovery(new URL(issuer), clientId, clientSecret, auth, {
  execute: [client.allowInsecureRequests],
});

/** Per browser: the flow in progress, then the tokens. */
const sessions = new Map();

function browserSession(req, res) {
  const cookies = Object.fromEntries(
    (req.headers.cookie ?? '').split(';').map((c) => c.trim().split('=')).filter((kv) => kv.length === 2),
  );
  let id = cookies[cookieName];
  if (!id || !sessions.has(id)) {
    id = randomBytes(16).toString('hex');
    sessions.set(id, {});
    res.setHeader('Set-Cookie', `${cookieName}=${id}; Path=/; HttpOnly; SameSite=Lax`);
  }
  return sessions.get(id);
}

const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const json = (value) => escape(JSON.stringify(value, null, 2));

function page(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><title>Test application</title></head><body>${body}</body></html>`);
}

function redirect(res, location) {
  res.writeHead(302, { Location: String(location), 'Cache-Control': 'no-store' });
  res.end();
}

/** `error: description` of an OAuth error (authorization response or token endpoint), else the message. */
function describe(err) {
  if (err && typeof err.error === 'string') return `${err.error}: ${err.error_description ?? ''}`;
  return `${err?.code ?? 'error'}: ${err?.message ?? err}`;
}

async function login(url, state, res) {
  state.codeVerifier = client.randomPKCECodeVerifier();
  state.state = client.randomState();
  state.nonce = client.randomNonce();
  const parameters = {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(state.codeVerifier),
    code_challenge_method: 'S256',
    state: state.state,
    nonce: state.nonce,
  };
  for (const name of ['prompt', 'max_age', 'login_hint', 'ui_locales']) {
    const value = url.searchParams.get(name);
    if (value !== null) parameters[name] = value;
  }
  redirect(res, client.buildAuthorizationUrl(config, parameters));
}

async function callback(url, state, res) {
  const checks = {
    pkceCodeVerifier: state.codeVerifier,
    expectedState: state.state,
    expectedNonce: state.nonce,
    idTokenExpected: true,
  };
  // The state is single use here as well.
  delete state.codeVerifier;
  delete state.state;
  delete state.nonce;
  const tokens = await client.authorizationCodeGrant(config, url, checks);
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  state.idToken = tokens.id_token;
  state.refreshToken = tokens.refresh_token;
  state.usedRefreshTokens = [];
  page(
    res,
    200,
    `<h1>Logged in</h1><pre id="claims">${json(claims)}</pre><pre id="userinfo">${json(userinfo)}</pre>` +
      `<p id="refresh-token">${tokens.refresh_token ? 'a refresh token' : 'no refresh token'}</p>`,
  );
}

async function refresh(url, state, res) {
  const reuse = url.searchParams.get('reuse') === '1';
  const presented = reuse ? state.usedRefreshTokens?.at(-1) : state.refreshToken;
  if (!presented) return page(res, 400, '<p id="error">no_token: nothing to refresh</p>');
  const tokens = await client.refreshTokenGrant(config, presented);
  if (!reuse) {
    state.usedRefreshTokens.push(presented);
    state.refreshToken = tokens.refresh_token ?? presented;
  }
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, client.skipSubjectCheck);
  const outcome = {
    rotated: !!tokens.refresh_token && tokens.refresh_token !== presented,
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    userinfo,
  };
  page(res, 200, `<h1>Refreshed</h1><pre id="refreshed">${json(outcome)}</pre>`);
}

function logout(state, res) {
  if (!state.idToken) return page(res, 400, '<p id="error">no_session: not logged in here</p>');
  state.logoutState = client.randomState();
  const url = client.buildEndSessionUrl(config, {
    id_token_hint: state.idToken,
    post_logout_redirect_uri: postLogoutRedirectUri,
    state: state.logoutState,
  });
  delete state.idToken;
  delete state.refreshToken;
  redirect(res, url);
}

function bye(url, state, res) {
  const expected = state.logoutState;
  delete state.logoutState;
  if (!expected || url.searchParams.get('state') !== expected) {
    return page(res, 400, '<p id="error">state_mismatch: the logout state did not come back</p>');
  }
  page(res, 200, '<p id="bye">logged out</p>');
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', origin);
  const state = browserSession(req, res);
  try {
    switch (url.pathname) {
      case '/login':
        return await login(url, state, res);
      case '/cb':
        return await callback(url, state, res);
      case '/refresh':
        return await refresh(url, state, res);
      case '/logout':
        return logout(state, res);
      case '/bye':
        return bye(url, state, res);
      default:
        return page(res, 404, '<p>not found</p>');
    }
  } catch (err) {
    return page(res, 400, `<p id="error">${escape(describe(err))}</p>`);
  }
});
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
process.stdout.write(`${JSON.stringify({ rp: origin })}\n`);
process.on('SIGTERM', () => process.exit(0));
