/*
 * JWT verification in njs (Debian's libnginx-mod-http-js), the peer the
 * jwt module is compared with in tests/bench/jwt.  The same checks as the
 * module and the auth worker: signature, exp/nbf with 30 s leeway, iss,
 * aud.  @ES_SPKI@ and @HS_KEY@ are filled in by tests/bench/jwt/run.
 *
 * njs gives each request a fresh VM: nothing survives between requests,
 * so the EC key is imported again on every ES256 request (WebCrypto,
 * async); HS256 uses the synchronous crypto.createHmac.
 */

const ES_SPKI = '@ES_SPKI@';
const HS_KEY = '@HS_KEY@';
const ISS = 'encore';
const AUD = 'encore-api';
const LEEWAY = 30;

const nodeCrypto = require('crypto');

function token(r) {
    var h = r.headersIn.Authorization;

    if (!h || h.slice(0, 7) !== 'Bearer ') {
        return null;
    }

    var p = h.slice(7).split('.');

    if (p.length !== 3) {
        return null;
    }

    var header;

    try {
        header = JSON.parse(Buffer.from(p[0], 'base64url').toString());
    } catch (e) {
        return null;
    }

    return { p: p, header: header, input: p[0] + '.' + p[1] };
}

function claimsOk(seg) {
    var c;

    try {
        c = JSON.parse(Buffer.from(seg, 'base64url').toString());
    } catch (e) {
        return false;
    }

    var now = Math.floor(Date.now() / 1000);

    if (typeof c.exp !== 'number' || now >= c.exp + LEEWAY) {
        return false;
    }

    if (c.nbf !== undefined
        && (typeof c.nbf !== 'number' || now < c.nbf - LEEWAY))
    {
        return false;
    }

    if (c.iss !== ISS) {
        return false;
    }

    return c.aud === AUD || (Array.isArray(c.aud) && c.aud.includes(AUD));
}

function hs256(r) {
    var t = token(r);

    if (t === null || t.header.alg !== 'HS256') {
        return false;
    }

    var mac = nodeCrypto.createHmac('sha256', Buffer.from(HS_KEY, 'base64url'))
                        .update(t.input).digest('base64url');

    return mac === t.p[2] && claimsOk(t.p[1]);
}

async function es256(r) {
    var t = token(r);

    if (t === null || t.header.alg !== 'ES256') {
        return false;
    }

    var key = await crypto.subtle.importKey('spki',
                                            Buffer.from(ES_SPKI, 'base64'),
                                            { name: 'ECDSA',
                                              namedCurve: 'P-256' },
                                            false, ['verify']);

    var ok = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' },
                                        key,
                                        Buffer.from(t.p[2], 'base64url'),
                                        Buffer.from(t.input));

    return ok && claimsOk(t.p[1]);
}

/* js_content of a protected location: check, then answer */
function content_hs(r) {
    r.return(hs256(r) ? 200 : 401);
}

async function content_es(r) {
    var ok = await es256(r);

    r.return(ok ? 200 : 401);
}

/* js_content of an internal auth_request location */
function verify_hs(r) {
    r.return(hs256(r) ? 204 : 401);
}

async function verify_es(r) {
    var ok = await es256(r);

    r.return(ok ? 204 : 401);
}

export default { content_hs, content_es, verify_hs, verify_es };
