// The load generator: `c` closed loops over one keep-alive agent with at most `c` sockets, each
// running a scenario's step (one request, or one flow of several) back to back. No dependencies.
import http from 'node:http';

/** One HTTP request over `agent`. Resolves { status, headers, body } (body as text). */
export function request(agent, url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = body === undefined ? undefined : Buffer.from(body);
    const req = http.request({
      agent, method, host: u.hostname, port: u.port, path: u.pathname + u.search,
      headers: payload ? { ...headers, 'content-length': payload.length } : headers,
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** A client bound to one base URL and agent: get/post (form or JSON), and the JSON body. */
export function client(baseUrl, agent) {
  const send = async (method, path, { form, json, headers = {} } = {}) => {
    let body;
    if (form) { body = new URLSearchParams(form).toString(); headers = { 'content-type': 'application/x-www-form-urlencoded', ...headers }; }
    if (json) { body = JSON.stringify(json); headers = { 'content-type': 'application/json', ...headers }; }
    const r = await request(agent, baseUrl + path, { method, headers, body });
    try { r.json = JSON.parse(r.body); } catch { r.json = undefined; }
    return r;
  };
  return {
    baseUrl, agent,
    get: (path, opts) => send('GET', path, opts),
    post: (path, opts) => send('POST', path, opts),
  };
}

export const newAgent = (connections) => new http.Agent({ keepAlive: true, maxSockets: connections });

function quantile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * Runs `loops` (objects with `step()` → { ok, error?, trips? } and optional `reset()`, called
 * after a failed step) concurrently: `warmupMs` unmeasured, then a `windowMs` window in which
 * only steps that end inside it count. `meter.sample()` is read at the window's edges.
 * Returns { n, errors, errorSamples, rps, p50, p99, cpu: {workerd, worker, node} ms per step, trips }.
 */
export async function runClosedLoops(loops, { warmupMs, windowMs, meter }) {
  const t0 = performance.now() + warmupMs;
  const t1 = t0 + windowMs;
  const latencies = [];
  const tripsSeen = new Map();
  const errorSamples = new Map();
  let errors = 0;
  let cpu0; let cpu1;
  const edge = (at, fn) => new Promise((resolve) => setTimeout(() => { fn(); resolve(); }, Math.max(0, at - performance.now())));
  const meterDone = Promise.all([edge(t0, () => { cpu0 = meter.sample(); }), edge(t1, () => { cpu1 = meter.sample(); })]);

  async function loop(l) {
    while (performance.now() < t1) {
      const start = performance.now();
      let r;
      try { r = await l.step(); } catch (e) { r = { ok: false, error: `exception: ${e.message}` }; }
      const end = performance.now();
      const counted = end >= t0 && end < t1;
      if (r.ok) {
        if (counted) {
          latencies.push(end - start);
          if (r.trips) tripsSeen.set(r.trips, (tripsSeen.get(r.trips) || 0) + 1);
        }
      } else {
        errors++; // warm-up errors count too: any error is reported
        const key = String(r.error).slice(0, 160);
        errorSamples.set(key, (errorSamples.get(key) || 0) + 1);
        if (l.reset) await l.reset();
      }
    }
  }
  await Promise.all([...loops.map(loop), meterDone]);
  latencies.sort((a, b) => a - b);
  const n = latencies.length;
  const per = (k) => (n ? (cpu1[k] - cpu0[k]) / n : NaN);
  const trips = [...tripsSeen].sort((a, b) => b[1] - a[1])[0]?.[0];
  return {
    n, errors, errorSamples: [...errorSamples].map(([e, count]) => `${count}× ${e}`),
    rps: n / (windowMs / 1000), p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99),
    cpu: { workerd: per('workerd'), worker: per('worker'), node: per('node') }, trips,
  };
}

/** Adds two `x-storage-round-trips` values ("kv=1; d1=3"). */
export function addTrips(a, b) {
  if (!a) return b;
  if (!b) return a;
  const parse = (s) => Object.fromEntries(s.split(';').map((p) => p.trim().split('=')).map(([k, v]) => [k, Number(v)]));
  const x = parse(a); const y = parse(b);
  return `kv=${(x.kv || 0) + (y.kv || 0)}; d1=${(x.d1 || 0) + (y.d1 || 0)}`;
}
