// A scripted bot: an unmodified ccxt exchange whose API base URLs are pointed
// at keywarden, running a list of unified calls. Reads one JSON job on stdin,
// prints one JSON report. Used by keywarden's end-to-end tests; talks only to
// the loopback URLs it is given.
'use strict';

function rewrite(value, hostMap) {
  if (typeof value === 'string') {
    for (const [from, to] of Object.entries(hostMap)) {
      if (value.startsWith(from)) return to + value.slice(from.length);
    }
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => rewrite(v, hostMap));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = rewrite(v, hostMap);
    return out;
  }
  return value;
}

function brief(v, depth = 0) {
  if (depth > 3) return '…';
  if (Array.isArray(v)) return v.slice(0, 5).map((x) => brief(x, depth + 1));
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'info') continue;
      out[k] = brief(x, depth + 1);
    }
    return out;
  }
  return v;
}

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const job = JSON.parse(input);
  // job.module optionally names another installed ccxt release (an npm
  // alias such as ccxt-bitmex) for exchanges the current one has dropped.
  if (job.module !== undefined && !/^ccxt(-[a-z0-9]+)?$/.test(job.module)) throw new Error('bad ccxt module ' + job.module);
  const ccxt = require(job.module || 'ccxt');
  const Cls = ccxt[job.exchange];
  if (!Cls) throw new Error('no such ccxt exchange ' + job.exchange);
  const ex = new Cls(Object.assign({ enableRateLimit: false, timeout: 15000 }, job.credentials || {}, { options: job.options || {} }));
  if (job.sandbox) ex.setSandboxMode(true);
  if (job.hostname) ex.hostname = job.hostname;
  ex.urls = rewrite(ex.urls, job.hostMap || {});
  if (job.markets) ex.setMarkets(job.markets, job.currencies || undefined);
  // ccxt loads its HTTP client (undici) and probes for proxy modules
  // lazily, inside the first fetch, after that request is signed: the
  // first signed call's timestamp would age by the whole module load
  // (seconds on a loaded machine) before the request is sent, and a venue
  // or keywarden would rightly refuse it as outside its recvWindow. Load
  // them now, so that every call is signed just before it is sent.
  await ex.loadProxyModules();
  await ex.loadFetchImplementation();
  if (ex.fetchImplementation === undefined) throw new Error('ccxt did not load its HTTP client before the first call');
  const vars = {};
  const report = [];
  for (const step of job.steps) {
    const args = (step.args || []).map((a) => (typeof a === 'string' && a.startsWith('$') ? vars[a.slice(1)] : a));
    try {
      const res = await ex[step.op](...args);
      if (step.save) vars[step.save] = step.saveField ? res[step.saveField] : res;
      report.push({ op: step.op, ok: true, result: brief(res) });
    } catch (e) {
      report.push({ op: step.op, ok: false, error: { name: e && e.constructor && e.constructor.name, message: String(e && e.message || e).slice(0, 500) } });
    }
  }
  process.stdout.write(JSON.stringify(report));
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
