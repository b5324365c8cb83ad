// Preloaded into bot.js by TestCCXTBotSignsAfterLoadingHTTPClient (through
// NODE_OPTIONS): appends to the file named by KEYWARDEN_TEST_UNDICI_LOADED
// the time, in ms, at which the undici module (ccxt's HTTP client) finished
// loading, once per load through node's module loader.
'use strict';
const fs = require('fs');
const Module = require('module');

const out = process.env.KEYWARDEN_TEST_UNDICI_LOADED;
const load = Module._load;
Module._load = function (request, ...rest) {
  const m = load.call(this, request, ...rest);
  if (out && request === 'undici') fs.appendFileSync(out, Date.now() + '\n');
  return m;
};
