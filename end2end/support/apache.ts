// Apache httpd with mod_auth_openidc (Debian's apache2 and libapache2-mod-auth-openidc; `make
// e2e-deps` installs them) protecting a page, as an operator would put an existing tool behind
// promio.connect. The page is a server-side include that prints the claims mod_auth_openidc passes
// on, so a test can see who Apache thinks is logged in.
//
// A minimal httpd.conf of its own in a temporary folder (nothing of /etc/apache2 is read), one
// process (`apache2 -X`) listening on 127.0.0.1, stopped by `stop()`.
import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const modules = '/usr/lib/apache2/modules';
export const apacheBin = process.env.E2E_APACHE_BIN ?? '/usr/sbin/apache2';

/** Whether this machine has Apache and mod_auth_openidc (`make e2e-deps` installs both). */
export function apacheAvailable(): boolean {
  return existsSync(apacheBin) && existsSync(path.join(modules, 'mod_auth_openidc.so'));
}

export type Apache = { url: string; protectedUrl: string; stop: () => void };

/** The httpd.conf of a server on `port` whose /protected/ needs a login at `issuer`. */
export function apacheConfig(options: {
  dir: string;
  port: number;
  issuer: string;
  clientId: string;
  clientSecret: string;
  passphrase: string;
  runAs?: string;
  /** false: mod_auth_openidc's default, no PKCE. */
  pkce?: boolean;
}): string {
  const { dir, port } = options;
  const origin = `http://localhost:${port}`;
  const load = (name: string, file: string) => `LoadModule ${name} ${modules}/${file}`;
  return [
    `ServerRoot "${dir}"`,
    `ServerName localhost`,
    `Listen 127.0.0.1:${port}`,
    `PidFile "${dir}/httpd.pid"`,
    `DefaultRuntimeDir "${dir}"`,
    `ErrorLog "${dir}/error.log"`,
    `LogLevel warn auth_openidc:info`,
    load('mpm_prefork_module', 'mod_mpm_prefork.so'),
    load('authn_core_module', 'mod_authn_core.so'),
    load('authz_core_module', 'mod_authz_core.so'),
    load('authz_user_module', 'mod_authz_user.so'),
    load('auth_openidc_module', 'mod_auth_openidc.so'),
    load('mime_module', 'mod_mime.so'),
    load('dir_module', 'mod_dir.so'),
    load('include_module', 'mod_include.so'),
    // As root Apache serves only after changing to an unprivileged user (it refuses otherwise).
    ...(options.runAs ? [`User ${options.runAs}`, `Group ${options.runAs}`] : []),
    `TypesConfig /etc/mime.types`,
    `DocumentRoot "${dir}/htdocs"`,
    `DirectoryIndex index.shtml`,
    `<Directory "${dir}/htdocs">`,
    `    Options +Includes`,
    `    AddType text/html .shtml`,
    `    AddOutputFilter INCLUDES .shtml`,
    `    Require all granted`,
    `</Directory>`,
    '',
    `OIDCProviderMetadataURL ${options.issuer}/.well-known/openid-configuration`,
    `OIDCClientID ${options.clientId}`,
    `OIDCClientSecret ${options.clientSecret}`,
    `OIDCRedirectURI ${origin}/protected/redirect_uri`,
    `OIDCCryptoPassphrase ${options.passphrase}`,
    ...(options.pkce === false ? [] : [`OIDCPKCEMethod S256`]),
    `OIDCScope "openid profile email"`,
    '',
    `<Location /protected>`,
    `    AuthType openid-connect`,
    `    Require valid-user`,
    `</Location>`,
    '',
  ].join('\n');
}

/** The protected page: who mod_auth_openidc says is logged in, from its claims. */
const protectedPage = `<!doctype html>
<html lang="en">
<head><title>Protected by Apache</title></head>
<body>
<h1>Protected by Apache</h1>
<p>User name: <span id="username"><!--#echo var="OIDC_CLAIM_preferred_username" --></span></p>
<p>Company ID: <span id="company"><!--#echo var="OIDC_CLAIM_company_id" --></span></p>
<p>Remote user: <span id="remote-user"><!--#echo var="REMOTE_USER" --></span></p>
</body>
</html>
`;

/** Starts Apache on `port` (registered beforehand with redirect URI
 * `http://localhost:PORT/protected/redirect_uri`) and resolves once it answers. */
export async function startApache(options: {
  port: number;
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** false: mod_auth_openidc's default, no PKCE. */
  pkce?: boolean;
}): Promise<Apache> {
  const dir = mkdtempSync(path.join(tmpdir(), 'promio-apache-'));
  // Readable by the user Apache changes to when started as root.
  chmodSync(dir, 0o755);
  mkdirSync(path.join(dir, 'htdocs', 'protected'), { recursive: true, mode: 0o755 });
  writeFileSync(path.join(dir, 'htdocs', 'protected', 'index.shtml'), protectedPage, { mode: 0o644 });
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const conf = apacheConfig({
    ...options,
    dir,
    passphrase: `e2e-${Math.random().toString(36).slice(2)}-${Date.now()}`,
    runAs: asRoot ? 'www-data' : undefined,
  });
  const confFile = path.join(dir, 'httpd.conf');
  writeFileSync(confFile, conf, { mode: 0o600 });

  const child: ChildProcess = spawn(apacheBin, ['-X', '-f', confFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));

  const errorLog = () => {
    const file = path.join(dir, 'error.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  };
  const stop = () => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://localhost:${options.port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited !== undefined) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`apache2 exited (${exited}):\n${output}\n${errorLog()}`);
    }
    try {
      await fetch(`http://127.0.0.1:${options.port}/`);
      break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      const log = errorLog();
      stop();
      throw new Error(`apache2 did not start within 20 s:\n${output}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, protectedUrl: `${url}/protected/`, stop };
}
