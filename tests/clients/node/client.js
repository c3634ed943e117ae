// Calls fleetmind serve from Node.js with nothing of fleetmind's: ModelInfer over gRPC,
// loaded from the repository's .proto by @grpc/proto-loader, and infer over HTTP/REST
// with Node's own fetch. Prints one JSON line: each flavour's outputs by name.
//
//   node client.js --grpc 127.0.0.1:8001 --http 127.0.0.1:8000 --model cartpole \
//       --obs '[[0.1, 0.2, 0.3, 0.4]]' [--token TOKEN]
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO = path.join(__dirname, "..", "..", "..", "proto", "inference", "grpc_predict_v2.proto");

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

function decode(datatype, buffer, count) {
  const values = [];
  for (let i = 0; i < count; i++) {
    if (datatype === "INT64") values.push(Number(buffer.readBigInt64LE(i * 8)));
    else if (datatype === "FP32") values.push(buffer.readFloatLE(i * 4));
    else throw new Error(`datatype ${datatype} is not decoded here`);
  }
  return values;
}

function inferGrpc(target, model, rows, token) {
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
  const inference = grpc.loadPackageDefinition(definition).inference;
  const client = new inference.GRPCInferenceService(target, grpc.credentials.createInsecure());
  const raw = Buffer.alloc(rows.length * rows[0].length * 4);
  rows.flat().forEach((v, i) => raw.writeFloatLE(v, i * 4));
  const request = {
    model_name: model,
    inputs: [{ name: "observation", datatype: "FP32", shape: [rows.length, rows[0].length] }],
    raw_input_contents: [raw],
  };
  const metadata = new grpc.Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  const deadline = new Date(Date.now() + 10000);
  return new Promise((resolve, reject) => {
    client.ModelInfer(request, metadata, { deadline }, (err, reply) => {
      client.close();
      if (err) return reject(err);
      const outputs = {};
      reply.outputs.forEach((o, i) => {
        const count = o.shape.reduce((a, b) => a * Number(b), 1);
        outputs[o.name] = decode(o.datatype, reply.raw_output_contents[i], count);
      });
      resolve(outputs);
    });
  });
}

async function inferHttp(target, model, rows, token) {
  const body = {
    inputs: [{ name: "observation", shape: [rows.length, rows[0].length], datatype: "FP32", data: rows }],
  };
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const reply = await fetch(`http://${target}/v2/models/${model}/infer`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const document = await reply.json();
  if (!reply.ok) throw new Error(`HTTP ${reply.status}: ${document.error}`);
  const outputs = {};
  for (const o of document.outputs) outputs[o.name] = o.data;
  return outputs;
}

async function main() {
  const a = args(process.argv.slice(2));
  const rows = JSON.parse(a.obs);
  const result = {};
  if (a.grpc) result.grpc = await inferGrpc(a.grpc, a.model, rows, a.token);
  if (a.http) result.http = await inferHttp(a.http, a.model, rows, a.token);
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err.message || err}\n`);
  process.exit(1);
});
