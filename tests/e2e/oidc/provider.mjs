// A real OpenID Provider for scopesvc's tests: npm `oidc-provider` (MIT, a certified OpenID
// Provider implementation), configured for the client-credentials grant with resource indicators.
//
//   OIDC_PROVIDER=$SCOPESVC_TOOLS/oidc-provider/node_modules/oidc-provider PORT=8080 node provider.mjs
//
// Resource servers (RFC 8707 resource indicators) and the access tokens issued for them:
//   https://api.example.test     JWT access tokens (RFC 9068, typ at+jwt) signed RS256
//   https://es.example.test      JWT access tokens signed ES256
//   https://opaque.example.test  opaque access tokens, checked by RFC 7662 introspection
// Clients: `app` (client_credentials; may ask for the scopes below) and `scopesvc` (introspects).
// Prints "listening <issuer>" once it accepts connections. Keys are generated at each start;
// SIGUSR2 rotates them (a new RSA and EC key first, the old ones kept in the JWKS).
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const { default: Provider } = await import(pathToFileURL(path.join(process.env.OIDC_PROVIDER, 'lib', 'index.js')));

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const scope = process.env.SCOPES || 'users:read groups:read scheduled_events:read organizations:read';
const resources = {
  'https://api.example.test': { format: 'jwt', alg: 'RS256' },
  'https://es.example.test': { format: 'jwt', alg: 'ES256' },
  'https://opaque.example.test': { format: 'opaque' },
};

let generation = 0;
function newKeys() {
  generation += 1;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [{ ...rsa, kid: `rsa-${generation}`, alg: 'RS256', use: 'sig' },
          { ...ec, kid: `ec-${generation}`, alg: 'ES256', use: 'sig' }];
}

function start(keys) {
  const provider = new Provider(issuer, {
    clients: [
      { client_id: 'app', client_secret: process.env.APP_SECRET || 'app-secret', grant_types: ['client_credentials'],
        redirect_uris: [], response_types: [], scope },
      { client_id: 'scopesvc', client_secret: process.env.SCOPESVC_SECRET || 'scopesvc-secret',
        grant_types: [], redirect_uris: [], response_types: [] },
    ],
    jwks: { keys },
    scopes: scope.split(' '),
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          const server = resources[indicator];
          if (!server) throw new Provider.errors.InvalidTarget();
          return { scope, audience: indicator, accessTokenFormat: server.format,
                   ...(server.alg ? { jwt: { sign: { alg: server.alg } } } : {}) };
        },
      },
    },
  });
  provider.proxy = false;
  return provider;
}

let keys = newKeys();
let provider = start(keys);
// One HTTP server; the provider behind it is swapped on rotation (its state is in memory: tokens
// issued before a rotation stay introspectable only until then, which the tests do not need).
const { createServer } = await import('node:http');
const server = createServer((req, res) => provider.callback()(req, res));
process.on('SIGUSR2', () => {
  keys = [...newKeys(), ...keys];
  provider = start(keys);
  console.log(`rotated ${keys[0].kid} ${keys[1].kid}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
server.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
