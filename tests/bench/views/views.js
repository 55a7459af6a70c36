/*
 * The views of conf/views.conf written in njs (Debian's
 * libnginx-mod-http-js) with r.subrequest: the peer the aggregate module
 * is compared with in tests/bench/views.
 *
 * VIEWS (below) is filled in by tests/bench/views/run from the
 * encore_aggregate_part lines of conf/views.conf (njsconf.py): the same
 * parts, the same internal URIs (so the same part locations, upstreams,
 * keepalive and proxy_cache), merged in the same order into the same
 * output, with the module's rules (ngx_modules/aggregate/README.md):
 *
 *   - stage 1: every part without a {part.field} reference, in parallel;
 *     stage 2: the parts with one, in parallel, once stage 1 is in;
 *   - a reference's value URL-encoded (RFC 3986 unreserved characters
 *     kept), an array's items joined with "," (at most max_items); an
 *     empty array: the part is not requested and is []; a missing value,
 *     or a failed referenced part: null and an error 424;
 *   - a part's answer must be 2xx, application/json or application/*+json,
 *     no Content-Encoding, at most max_size bytes, and a JSON object or
 *     array; else garbage
 *     (502); a timeout is 504 (the timer starts with the part's stage);
 *   - the main part's status is the view's; a failed required part fails
 *     the view (its problem+json passed through); a failed optional part
 *     is null, an errors[] entry and a name in X-Encore-Partial;
 *   - pick, fields (allow-list), deny, key (dotted), merge;
 *   - the view's members in configuration order, then errors (a part's
 *     own members in njs's order: see Ordered below); ETag = '"' + base64url
 *     of the first 16 bytes of SHA-256 of the body + '"'; 304 for a
 *     matching If-None-Match; Cache-Control: private, no-cache.
 *
 * njs gives each request a fresh VM: the spec is parsed into objects once
 * per request (JSON.parse of a constant); that is njs's cost, not a
 * handicap added here.
 */

const VIEWS = JSON.parse('@VIEWS@');

const nodeCrypto = require('crypto');

const REASONS = {
    400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
    404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
    410: 'Gone', 422: 'Unprocessable Content', 424: 'Failed Dependency',
    429: 'Too Many Requests', 500: 'Internal Server Error',
    502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout'
};

function lookup(doc, path) {
    var v = doc, i;

    for (i = 0; i < path.length; i++) {
        if (v === null || typeof v !== 'object' || Array.isArray(v)
            || !Object.prototype.hasOwnProperty.call(v, path[i]))
        {
            return undefined;
        }
        v = v[path[i]];
    }

    return v;
}

function enc(v) {
    return encodeURIComponent(String(v)).replace(/[!'()*]/g, function (c) {
        return '%' + c.charCodeAt(0).toString(16).toUpperCase();
    });
}

/* the text of a reference's value; null: missing; '': an empty array */
function refText(v, maxItems) {
    var t = typeof v, out = [], i;

    if (t === 'string' || t === 'number' || t === 'boolean') {
        return enc(v);
    }

    if (!Array.isArray(v)) {
        return null;
    }

    for (i = 0; i < v.length && i < maxItems; i++) {
        t = typeof v[i];
        if (t !== 'string' && t !== 'number' && t !== 'boolean') {
            return null;
        }
        out.push(enc(v[i]));
    }

    return out.join(',');
}

function expandVars(r, text) {
    return text.replace(/\$(\{[a-z0-9_]+\}|[a-z0-9_]+)/gi, function (m, n) {
        if (n[0] === '{') {
            n = n.slice(1, -1);
        }
        var v = r.variables[n];
        return v === undefined ? '' : v;
    });
}

function filterObj(o, fields, deny) {
    var out, k, i;

    if (fields) {
        out = {};
        for (i = 0; i < fields.length; i++) {
            if (Object.prototype.hasOwnProperty.call(o, fields[i])) {
                out[fields[i]] = o[fields[i]];
            }
        }
    } else {
        out = o;
    }

    if (deny) {
        if (out === o) {
            out = {};
            for (k in o) {
                out[k] = o[k];
            }
        }
        for (i = 0; i < deny.length; i++) {
            delete out[deny[i]];
        }
    }

    return out;
}

function select(p, answer) {
    var v = p.pick ? lookup(answer, p.pick) : answer;

    if (v === undefined) {
        return undefined;
    }

    if (!p.fields && !p.deny) {
        return v;
    }

    if (Array.isArray(v)) {
        return v.map(function (o) {
            return (o !== null && typeof o === 'object' && !Array.isArray(o))
                   ? filterObj(o, p.fields, p.deny) : o;
        });
    }

    if (v !== null && typeof v === 'object') {
        return filterObj(v, p.fields, p.deny);
    }

    return v;
}

/*
 * njs 0.7.9's objects do not keep their members' order (JSON.parse then
 * JSON.stringify reorders a part's members), so the view's own members
 * are kept in an Ordered and written in configuration order here; inside
 * a part's value the order is njs's.
 */
function Ordered() {
    this.keys = [];
    this.vals = {};
}

function oset(o, k, v) {
    if (!Object.prototype.hasOwnProperty.call(o.vals, k)) {
        o.keys.push(k);
    }
    o.vals[k] = v;
}

function place(view, p, value) {
    var o = view, i, k, n;

    if (p.merge) {
        for (k in value) {
            oset(view, k, value[k]);
        }
        return;
    }

    for (i = 0; i < p.key.length - 1; i++) {
        n = o.vals[p.key[i]];
        if (!(n instanceof Ordered)) {
            n = new Ordered();
            oset(o, p.key[i], n);
        }
        o = n;
    }

    oset(o, p.key[p.key.length - 1], value);
}

function serialize(o) {
    var out = [], i, k, v;

    for (i = 0; i < o.keys.length; i++) {
        k = o.keys[i];
        v = o.vals[k];
        out.push(JSON.stringify(k) + ':'
                 + (v instanceof Ordered ? serialize(v) : JSON.stringify(v)));
    }

    return '{' + out.join(',') + '}';
}

/* one part: resolves to {status, doc, body, ctype} (status 0: timeout) */
function fetchPart(r, uri, p) {
    return new Promise(function (resolve) {
        var done = false;
        var timer = setTimeout(function () {
            if (!done) {
                done = true;
                resolve({ status: 504, timeout: true });
            }
        }, p.timeout);

        var q = uri.indexOf('?');
        var sr = q === -1 ? r.subrequest(uri)
                          : r.subrequest(uri.slice(0, q), uri.slice(q + 1));

        sr.then(function (reply) {
            if (done) {
                return;
            }
            done = true;
            clearTimeout(timer);
            resolve(judge(reply, p));

        }).catch(function (e) {
            if (done) {
                return;
            }
            done = true;
            clearTimeout(timer);
            resolve({ status: 502, garbage: true });
        });
    });
}

function judge(reply, p) {
    var ct = reply.headersOut['Content-Type'] || '';
    var body = reply.responseText;
    var json = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(ct);
    var doc;

    if (reply.status < 200 || reply.status > 299) {
        return { status: reply.status, body: body, ctype: ct };
    }

    if (!json || reply.headersOut['Content-Encoding'] !== undefined
        || body === undefined || body.length > p.max_size)
    {
        return { status: 502, garbage: true };
    }

    try {
        doc = JSON.parse(body);
    } catch (e) {
        return { status: 502, garbage: true };
    }

    if (doc === null || typeof doc !== 'object') {
        return { status: 502, garbage: true };
    }

    return { status: reply.status, doc: doc };
}

function problem(r, status, detail) {
    r.headersOut['Content-Type'] = 'application/problem+json';
    r.return(status, JSON.stringify({
        type: 'about:blank', title: REASONS[status] || 'Error',
        status: status, detail: detail
    }) + '\n');
}

function fail(r, p, res) {
    if (res.timeout) {
        return problem(r, 504, 'the part "' + p.name + '" timed out');
    }

    if (res.garbage) {
        return problem(r, 502, 'the part "' + p.name + '" answered garbage');
    }

    if (res.status === 424) {
        return problem(r, 424, 'the part "' + p.name + '" depends on a part'
                       + ' that failed');
    }

    if (/^application\/problem\+json/i.test(res.ctype || '')) {
        r.headersOut['Content-Type'] = res.ctype;
        return r.return(res.status, res.body);
    }

    return problem(r, res.status, 'the part "' + p.name + '" failed');
}

function etagMatch(header, etag) {
    var list, i, t;

    if (header.trim() === '*') {
        return true;
    }

    list = header.split(',');
    for (i = 0; i < list.length; i++) {
        t = list[i].trim();
        if (t.slice(0, 2) === 'W/') {
            t = t.slice(2);
        }
        if (t === etag) {
            return true;
        }
    }

    return false;
}

async function view(r) {
    var spec = VIEWS[r.variables.bench_view];
    var parts = spec.parts;
    var results = {}, stage, i, p, uri, piece, v, t, missing, pending;

    for (stage = 1; stage <= 2; stage++) {
        pending = [];

        for (i = 0; i < parts.length; i++) {
            p = parts[i];
            if (p.stage !== stage) {
                continue;
            }

            uri = '';
            missing = 0;
            for (piece = 0; piece < p.uri.length; piece++) {
                t = p.uri[piece];
                if (typeof t === 'string') {
                    uri += expandVars(r, t);
                    continue;
                }
                if (results[t.part].doc === undefined) {
                    missing = 424;
                    break;
                }
                v = refText(lookup(results[t.part].doc, t.path), p.max_items);
                if (v === null) {
                    missing = 424;
                    break;
                }
                if (v === '') {
                    missing = -1;
                    break;
                }
                uri += v;
            }

            if (missing === 424) {
                results[p.name] = { status: 424 };
            } else if (missing === -1) {
                results[p.name] = { status: 200, empty: true };
            } else {
                pending.push({ name: p.name, promise: fetchPart(r, uri, p) });
            }
        }

        for (i = 0; i < pending.length; i++) {
            results[pending[i].name] = await pending[i].promise;
        }
    }

    var out = new Ordered(), errors = [], partial = [], status = 200, res;

    for (i = 0; i < parts.length; i++) {
        p = parts[i];
        res = results[p.name];

        if (res.empty) {
            place(out, p, []);
            continue;
        }

        if (res.doc !== undefined) {
            v = select(p, res.doc);
            if (v !== undefined) {
                if (p.main) {
                    status = res.status;
                }
                place(out, p, v);
                continue;
            }
            res = { status: 502, garbage: true };
        }

        if (p.main || p.required) {
            return fail(r, p, res);
        }

        errors.push({ part: p.name, status: res.status });
        partial.push(p.name);
        place(out, p, null);
    }

    if (errors.length) {
        oset(out, 'errors', errors);
        r.headersOut['X-Encore-Partial'] = partial.join(', ');
    }

    var body = serialize(out);
    var etag = '"' + nodeCrypto.createHash('sha256').update(body).digest()
                     .slice(0, 16).toString('base64url') + '"';

    r.headersOut['Content-Type'] = 'application/json; charset=utf-8';
    r.headersOut['ETag'] = etag;
    r.headersOut['Cache-Control'] = 'private, no-cache';

    var inm = r.headersIn['If-None-Match'];
    if (inm !== undefined && etagMatch(inm, etag)) {
        return r.return(304);
    }

    r.return(status, body);
}

export default { view };
