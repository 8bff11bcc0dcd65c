// Applications that log in through the suite's promio.connect: registered with the real CLI
// (`promio-connect app create`), then run as processes of their own (support/rp.mjs, and Apache
// with mod_auth_openidc in support/apache.ts).
import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { baseURL } from '../env';
import { cli } from '../fixtures';

/** A TCP port nothing listens on now (on 127.0.0.1), for a process started next. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export type RegisteredApp = { clientId: string; clientSecret?: string };

/** `promio-connect app create …`: the client_id (and client_secret, unless public) it printed. */
export function createApp(options: {
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  backchannelLogoutUri?: string;
  companyId?: string;
  public?: boolean;
  /** false: `--pkce-required false` (a confidential application that sends no PKCE). */
  pkceRequired?: boolean;
}): RegisteredApp {
  const args = ['app', 'create', '--name', options.name];
  for (const uri of options.redirectUris) args.push('--redirect-uri', uri);
  for (const uri of options.postLogoutRedirectUris ?? []) args.push('--post-logout-redirect-uri', uri);
  if (options.backchannelLogoutUri) args.push('--backchannel-logout-uri', options.backchannelLogoutUri);
  if (options.companyId) args.push('--company-id', options.companyId);
  if (options.public) args.push('--public');
  if (options.pkceRequired === false) args.push('--pkce-required', 'false');
  const out = cli(args);
  const clientId = out.match(/^client_id:\s*(\S+)\s*$/m)?.[1];
  const clientSecret = out.match(/^client_secret:\s*(\S+)\s*$/m)?.[1];
  if (!clientId) throw new Error(`app create printed no client_id:\n${out}`);
  if (!options.public && !clientSecret) throw new Error(`app create printed no client_secret:\n${out}`);
  return { clientId, clientSecret };
}

/** Starts a helper process and resolves once one of its stdout lines satisfies `ready`; rejects
 * with its output when it exits first or takes longer than 20 s. */
export async function startProcess(
  command: string,
  args: string[],
  env: Record<string, string>,
  ready: (line: string) => boolean,
): Promise<ChildProcess> {
  const child = spawn(command, args, {
    env: { ...(process.env as Record<string, string>), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start:\n${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.split('\n').some(ready)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited (${code}) before it was ready:\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  // Keep reading, so that a full pipe never blocks it.
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

export type RelyingParty = { url: string; app: RegisteredApp; stop: () => void };

/** A test application (support/rp.mjs, npm openid-client) registered at the suite's promio.connect
 * with redirect URI `URL/cb` and post-logout redirect URI `URL/bye`. */
export async function startRelyingParty(
  name: string,
  options: { companyId?: string; auth?: 'basic' | 'post'; scope?: string } = {},
): Promise<RelyingParty> {
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const app = createApp({
    name,
    redirectUris: [`${url}/cb`],
    postLogoutRedirectUris: [`${url}/bye`],
    companyId: options.companyId,
  });
  const env: Record<string, string> = {
    RP_PORT: String(port),
    RP_ISSUER: baseURL,
    RP_CLIENT_ID: app.clientId,
    RP_CLIENT_SECRET: app.clientSecret ?? '',
    RP_AUTH: options.auth ?? 'basic',
  };
  if (options.scope) env.RP_SCOPE = options.scope;
  const child = await startProcess(
    process.execPath,
    [path.join(__dirname, 'rp.mjs')],
    env,
    (line) => line.startsWith('{"rp":'),
  );
  return { url, app, stop: () => child.kill() };
}
