// Reads a JSON array of signing jobs on stdin and prints, for each, what
// ccxt's own sign() produces with the clock frozen at job.nowMs. Used by
// keywarden's Go tests as an independent implementation of each venue's
// signing scheme. Never contacts a network: sign() only builds requests.
'use strict';
const ccxt = require('ccxt');

function freeze(ex, nowMs) {
  ex.milliseconds = () => nowMs;
  ex.seconds = () => Math.floor(nowMs / 1000);
  ex.microseconds = () => nowMs * 1000;
  ex.nonce = () => nowMs;
}

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const jobs = JSON.parse(input);
  const out = [];
  for (const job of jobs) {
    try {
      const Cls = ccxt[job.exchange];
      if (!Cls) throw new Error('no such ccxt exchange ' + job.exchange);
      const ex = new Cls(Object.assign({}, job.credentials || {}, { options: job.options || {} }));
      if (job.sandbox) ex.setSandboxMode(true);
      if (job.nowMs) freeze(ex, job.nowMs);
      const r = ex.sign(job.path, job.api, job.method, job.params || {}, job.headers || undefined, job.body || undefined);
      out.push({ url: r.url, method: r.method, body: r.body === undefined ? null : r.body, headers: r.headers || {} });
    } catch (e) {
      out.push({ error: String(e && e.message || e) });
    }
  }
  process.stdout.write(JSON.stringify(out));
}
main().catch((e) => { console.error(e); process.exit(1); });
