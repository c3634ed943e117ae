// Closed-loop gRPC callers that back off after a refusal, as the fleetmind SDK does,
// for benchmarks/serve_overload.py (--generator node). A Node.js process costs the
// server's machine far less CPU per call than a Python client, so at thousands of
// callers it measures the server rather than itself.
//
//   node benchmarks/overload_callers.js TARGET MESSAGE CALLERS CHANNELS RAMP_S WINDOW_S
//
// MESSAGE is a file holding one serialised ModelInferRequest (no gRPC framing). Each
// caller sends it, waits for the answer and sends it again; after RESOURCE_EXHAUSTED,
// CANCELLED or UNAVAILABLE it waits a random time up to 50 ms doubling to 1 s (full
// jitter), or longer when the server sent grpc-retry-pushback-ms. Calls that end in
// the window [RAMP_S, RAMP_S + WINDOW_S] are counted; one JSON line reports them.
// @grpc/grpc-js comes from tests/clients/node (scripts/node-client installs it).
'use strict';
const path = require('path');
const fs = require('fs');
const grpc = require(path.join(__dirname, '..', 'tests', 'clients', 'node', 'node_modules',
  '@grpc', 'grpc-js'));

const METHOD = '/inference.GRPCInferenceService/ModelInfer';
const DEADLINE_MS = 5000;
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 1000;
const REFUSALS = new Set([grpc.status.RESOURCE_EXHAUSTED, grpc.status.CANCELLED,
  grpc.status.UNAVAILABLE]);

const [target, messageFile, callersArg, channelsArg, rampArg, windowArg] = process.argv.slice(2);
if (windowArg === undefined) {
  console.error('usage: node overload_callers.js TARGET MESSAGE CALLERS CHANNELS RAMP_S WINDOW_S');
  process.exit(2);
}
const message = fs.readFileSync(messageFile);
const callers = Number(callersArg);
const channels = Number(channelsArg);
const start = Date.now() + Number(rampArg) * 1000;
const end = start + Number(windowArg) * 1000;
const identity = (x) => x;
const clients = Array.from({length: channels}, () => new grpc.Client(target,
  grpc.credentials.createInsecure(), {'grpc.use_local_subchannel_pool': 1}));
const statuses = {};
const answeredMs = [];
const refusedMs = [];

function call(client) {
  return new Promise((resolve) => {
    const began = process.hrtime.bigint();
    client.makeUnaryRequest(METHOD, identity, identity, message, new grpc.Metadata(),
      {deadline: Date.now() + DEADLINE_MS},
      (err) => resolve([err, Number(process.hrtime.bigint() - began) / 1e6]));
  });
}

async function caller(index) {
  const client = clients[index % channels];
  let cap = BACKOFF_FIRST_MS;
  while (Date.now() < end) {
    const [err, ms] = await call(client);
    const code = err ? err.code : grpc.status.OK;
    const now = Date.now();
    if (now >= start && now <= end) {
      const name = Object.keys(grpc.status).find((k) => grpc.status[k] === code);
      statuses[name] = (statuses[name] || 0) + 1;
      (code === grpc.status.OK ? answeredMs : refusedMs).push(ms);
    }
    if (!err) {
      cap = BACKOFF_FIRST_MS;
    } else if (REFUSALS.has(code)) {
      let wait = Math.random() * cap;
      const pushback = err.metadata ? err.metadata.get('grpc-retry-pushback-ms') : [];
      if (pushback.length) wait = Math.max(wait, Number(pushback[0]));
      cap = Math.min(BACKOFF_MAX_MS, 2 * cap);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

Promise.all(Array.from({length: callers}, (_, i) => caller(i))).then(() => {
  clients.forEach((c) => c.close());
  // a pipe takes a large write in pieces: exit once the last one is out, not before
  const report = JSON.stringify({statuses, answered_ms: answeredMs, refused_ms: refusedMs});
  process.stdout.write(report + '\n', () => process.exit(0));
});
