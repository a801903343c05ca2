// DPoP (RFC 9449) interoperability driver: openid-client 6, a client we did
// not write, against the license server. Run by tests/interop_dpop.rs.
//
//   node dpop.mjs SERVER_URL [--alg-header=EdDSA]
//
// SERVER_URL is the issuer (http://127.0.0.1:PORT). --alg-header=EdDSA
// rewrites the proofs' JWS `alg` from "Ed25519" (what openid-client 6 writes
// for an Ed25519 key, RFC 9864) to "EdDSA" with openid-client's documented
// `modifyAssertion` hook; without it the proofs are exactly openid-client's.
//
// Protocol: one JSON object per line on stdout, nothing else there (errors
// and notes go to stderr). The script discovers the server (RFC 8414), makes
// an Ed25519 key pair, starts the device flow and prints
//   {"event":"device_authorization","user_code":...}
// then polls the token endpoint with DPoP proofs until someone approves the
// code, and prints {"event":"token",...}. After that it reads commands, one a
// line, from stdin and answers each with one line {"event":"result",...}:
//   license           GET license_endpoint with the current license token
//   refresh           refresh grant with the current refresh token
//   revoke WHICH HOW  revoke the current `refresh` or `access` token, HOW
//                     `plain` (openid-client's tokenRevocation as it is:
//                     it sends no proof) or `proof` (the same call, with a
//                     DPoP proof by the same key added to the request)
//   quit
// Every answer carries `http`: the requests that command made, with their
// DPoP details and the server's answers, for the test to check.

import { createInterface } from 'node:readline'
import { readFileSync } from 'node:fs'
import * as client from 'openid-client'

const CLIENT_ID = 'license-console'

const args = process.argv.slice(2)
const server = args.find((a) => !a.startsWith('--'))
if (!server) {
  console.error('usage: node dpop.mjs SERVER_URL [--alg-header=EdDSA]')
  process.exit(2)
}
const algHeader = args.find((a) => a.startsWith('--alg-header='))?.split('=')[1]

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`)

const b64u = (bytes) => Buffer.from(bytes).toString('base64url')
const fromB64uJson = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'))

function version(pkg) {
  const url = new URL(`./node_modules/${pkg}/package.json`, import.meta.url)
  return JSON.parse(readFileSync(url, 'utf8')).version
}

// ---------------------------------------------------------------------------
// The HTTP trace: every request openid-client makes goes through this fetch
// (openid-client's documented `customFetch`), which records what was sent
// and answered, and, for `revoke ... proof`, adds a DPoP proof.

let trace = []
let revocationProof = null // { keyPair, alg } while a `revoke ... proof` runs
let lastNonce // the latest DPoP-Nonce the server sent, for our own proofs
let revocationEndpoint // from the metadata

function describeProof(proof) {
  if (!proof) return null
  try {
    const [h, p] = proof.split('.')
    const header = fromB64uJson(h)
    const payload = fromB64uJson(p)
    return {
      alg: header.alg,
      typ: header.typ,
      jwk: header.jwk,
      htm: payload.htm,
      htu: payload.htu,
      iat: payload.iat,
      has_jti: typeof payload.jti === 'string',
      has_ath: typeof payload.ath === 'string',
      nonce: payload.nonce ?? null,
    }
  } catch (e) {
    return { unreadable: String(e) }
  }
}

async function record(url, init, response) {
  const headers = new Headers(init?.headers)
  let body = null
  if ((response.headers.get('content-type') ?? '').includes('json')) {
    try {
      body = await response.clone().json()
    } catch {
      body = null
    }
  }
  const nonce = response.headers.get('dpop-nonce')
  if (nonce) lastNonce = nonce
  const authorization = headers.get('authorization')
  trace.push({
    method: init?.method ?? 'GET',
    url: String(url),
    authorization_scheme: authorization ? authorization.split(' ')[0] : null,
    dpop: describeProof(headers.get('dpop')),
    status: response.status,
    dpop_nonce_header: nonce,
    www_authenticate: response.headers.get('www-authenticate'),
    token_type: body?.token_type ?? null, // as the server wrote it
    error: body?.error ?? null,
    error_description: body?.error_description ?? null,
  })
}

function wantsNonce(status, entry) {
  return (
    (status === 400 || status === 401) &&
    (entry.error === 'use_dpop_nonce' ||
      /use_dpop_nonce/.test(entry.www_authenticate ?? ''))
  )
}

async function tracingFetch(url, init) {
  if (revocationProof && String(url) === revocationEndpoint) {
    // openid-client's tokenRevocation has no DPoP option: add the proof here,
    // and answer a nonce challenge once, as openid-client does elsewhere.
    for (let attempt = 0; ; attempt++) {
      const headers = new Headers(init.headers)
      headers.set('dpop', await makeProof(revocationProof, 'POST', String(url), lastNonce))
      const sent = { ...init, headers: Object.fromEntries(headers.entries()) }
      const response = await fetch(url, sent)
      await record(url, sent, response)
      if (attempt === 0 && wantsNonce(response.status, trace.at(-1))) continue
      return response
    }
  }
  const response = await fetch(url, init)
  await record(url, init, response)
  return response
}

// A DPoP proof for the revocation request, made the way oauth4webapi makes
// its own (same header and claims), with the same key.
async function makeProof({ keyPair, alg }, htm, htu, nonce) {
  const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey)
  const u = new URL(htu)
  const header = { alg, typ: 'dpop+jwt', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x } }
  const payload = {
    iat: Math.floor(Date.now() / 1000),
    jti: b64u(crypto.getRandomValues(new Uint8Array(32))),
    htm,
    htu: `${u.origin}${u.pathname}`,
    ...(nonce ? { nonce } : {}),
  }
  const input = `${b64u(Buffer.from(JSON.stringify(header)))}.${b64u(Buffer.from(JSON.stringify(payload)))}`
  const signature = await crypto.subtle.sign('Ed25519', keyPair.privateKey, Buffer.from(input))
  return `${input}.${b64u(signature)}`
}

function takeTrace() {
  const t = trace
  trace = []
  return t
}

function describeError(e) {
  return {
    name: e?.name ?? null,
    code: e?.code ?? null,
    message: String(e?.message ?? e),
    error: e?.error ?? null,
    error_description: e?.error_description ?? null,
    status: e?.status ?? e?.response?.status ?? null,
    cause: e?.cause?.message ?? null,
  }
}

async function step(name, fn) {
  try {
    return await fn()
  } catch (e) {
    out({ event: 'error', step: name, error: describeError(e), http: takeTrace() })
    console.error(e)
    process.exit(1)
  }
}

// ---------------------------------------------------------------------------

out({
  event: 'start',
  node: process.version,
  openid_client: version('openid-client'),
  oauth4webapi: version('oauth4webapi'),
})

const config = await step('discovery', () =>
  client.discovery(new URL(server), CLIENT_ID, undefined, client.None(), {
    algorithm: 'oauth2',
    execute: [client.allowInsecureRequests],
    [client.customFetch]: tracingFetch,
  }),
)
const metadata = config.serverMetadata()
revocationEndpoint = metadata.revocation_endpoint
out({ event: 'discovered', metadata, http: takeTrace() })

// Ed25519, the one algorithm the server takes. Extractable only so that the
// test can learn the public key (the private key never leaves this process).
const keyPair = await step('key', () => client.randomDPoPKeyPair('EdDSA', { extractable: true }))
const options =
  algHeader === undefined
    ? undefined
    : {
        [client.modifyAssertion]: (header) => {
          if (header.alg === 'Ed25519') header.alg = algHeader
        },
      }
const DPoP = client.getDPoPHandle(config, keyPair, options)
const publicJwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey)
out({
  event: 'key',
  jwk: { kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x },
  jkt: await DPoP.calculateThumbprint(),
})

const deviceAuthorization = await step('device_authorization', () =>
  client.initiateDeviceAuthorization(config, {}),
)
out({
  event: 'device_authorization',
  user_code: deviceAuthorization.user_code,
  verification_uri: deviceAuthorization.verification_uri,
  interval: deviceAuthorization.interval ?? null,
  expires_in: deviceAuthorization.expires_in,
  http: takeTrace(),
})

let tokens = await step('device_code_grant', () =>
  client.pollDeviceAuthorizationGrant(config, deviceAuthorization, undefined, { DPoP }),
)
const tokenFields = (t) => ({
  token_type: t.token_type,
  access_token: t.access_token,
  refresh_token: t.refresh_token ?? null,
  expires_in: t.expires_in ?? null,
})
out({ event: 'token', ...tokenFields(tokens), http: takeTrace() })

// ---------------------------------------------------------------------------
// Commands from the test.

async function run(words) {
  switch (words[0]) {
    case 'license': {
      const response = await client.fetchProtectedResource(
        config,
        tokens.access_token,
        new URL(metadata.license_endpoint),
        'GET',
        undefined,
        new Headers({ accept: 'application/json' }),
        { DPoP },
      )
      const text = await response.text()
      let body
      try {
        body = JSON.parse(text)
      } catch {
        body = text
      }
      return { status: response.status, body }
    }
    case 'refresh': {
      tokens = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP })
      return tokenFields(tokens)
    }
    case 'revoke': {
      const token = words[1] === 'access' ? tokens.access_token : tokens.refresh_token
      const hint = words[1] === 'access' ? 'access_token' : 'refresh_token'
      revocationProof =
        words[2] === 'proof' ? { keyPair, alg: algHeader ?? 'Ed25519' } : null
      try {
        await client.tokenRevocation(config, token, { token_type_hint: hint })
      } finally {
        revocationProof = null
      }
      return {}
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(words)}`)
  }
}

const lines = createInterface({ input: process.stdin, terminal: false })
for await (const line of lines) {
  const words = line.trim().split(/\s+/).filter(Boolean)
  if (words.length === 0) continue
  if (words[0] === 'quit') break
  try {
    const result = await run(words)
    out({ event: 'result', command: line.trim(), ok: true, ...result, http: takeTrace() })
  } catch (e) {
    out({
      event: 'result',
      command: line.trim(),
      ok: false,
      error: describeError(e),
      http: takeTrace(),
    })
  }
}
lines.close()
process.exit(0)
