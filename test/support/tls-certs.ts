import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** PEM files of a throw-away CA and a server certificate it signed, for TLS tests on loopback. */
export type TestCerts = { caFile: string; certFile: string; keyFile: string };

export const opensslAvailable = (): boolean => spawnSync('openssl', ['version']).status === 0;

/**
 * A CA and a server certificate for `127.0.0.1` and `localhost` (subject
 * alternative names: clients check the address or name they dialled), made
 * with the openssl command in `dir`. Valid for a day. Also a client
 * certificate: Cluster nodes present it to each other on the TLS cluster bus.
 */
export const makeTestCerts = (dir: string): TestCerts => {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '1', '-subj', '/CN=lorestore test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(file('server.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth, clientAuth\n');
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.crt'), '-days', '1', '-extfile', file('server.ext'));
  return { caFile: file('ca.crt'), certFile: file('server.crt'), keyFile: file('server.key') };
};
