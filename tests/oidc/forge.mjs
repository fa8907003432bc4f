// Forges the bad tokens of Atlas's auth test with node:crypto, one defect
// each, plus a control token made the same way with nothing wrong (it must
// be accepted, which shows that each refusal is caused by its defect).
//
// usage: node forge.mjs --signing-key rsa.pem --kid KID --issuer URL --good TOKEN
// Prints a JSON object: name -> token.

import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    'signing-key': { type: 'string' },
    kid: { type: 'string' },
    issuer: { type: 'string' },
    good: { type: 'string' },
    user: { type: 'string', default: 'alice' },
  },
});

const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const key = createPrivateKey(readFileSync(opt['signing-key']));
const now = Math.floor(Date.now() / 1000);

function claims(extra = {}) {
  return {
    iss: opt.issuer,
    sub: opt.user,
    aud: 'foundations',
    azp: 'foundations',
    preferred_username: opt.user,
    realm_access: { roles: ['offline_access'] },
    iat: now - 5,
    exp: now + 600,
    ...extra,
  };
}

function rs256(payload, { kid = opt.kid, privateKey = key } = {}) {
  const signing = `${b64({ alg: 'RS256', typ: 'JWT', kid })}.${b64(payload)}`;
  return `${signing}.${sign('sha256', Buffer.from(signing), privateKey).toString('base64url')}`;
}

const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const publicPem = createPublicKey(key).export({ type: 'spki', format: 'pem' });

const hsSigning = `${b64({ alg: 'HS256', typ: 'JWT', kid: opt.kid })}.${b64(claims())}`;
const hs256 = `${hsSigning}.${createHmac('sha256', publicPem).update(hsSigning).digest('base64url')}`;

const [head, , sig] = opt.good.split('.');
const goodPayload = JSON.parse(Buffer.from(opt.good.split('.')[1], 'base64url').toString());
const tampered = `${head}.${b64({ ...goodPayload, preferred_username: 'admin',
  realm_access: { roles: ['atlas-admin'] } })}.${sig}`;

console.log(JSON.stringify({
  control: rs256(claims()),
  expired: rs256(claims({ iat: now - 7200, exp: now - 3600 })),
  other_key: rs256(claims(), { privateKey: other }),
  wrong_kid: rs256(claims(), { kid: 'no-such-kid' }),
  alg_none: `${b64({ alg: 'none', typ: 'JWT', kid: opt.kid })}.${b64(claims())}.`,
  hs256_public_key: hs256,
  wrong_issuer: rs256(claims({ iss: 'https://127.0.0.1:1/realms/Other' })),
  wrong_audience: rs256(claims({ aud: 'another-client', azp: 'another-client' })),
  tampered,
}));
