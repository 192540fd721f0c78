#!/usr/bin/env node
// Drives one call through the demo carrier flow with a Node.js gRPC client built from
// protos/dialogue/v1/dialogue.proto at run time (no generated code), to prove the contract
// works for a second language exactly as shipped.
//
// Usage: node tests/protos/node/drive_call.js HOST:PORT
//
// Prints one JSON line per response to stdout:
//   {"step": "<event>", "call_id": "...", "request_id": "...", "response": {...}}
// then {"step": "get_call", "call_id": "...", "response": {...}}.
// Exits non-zero with a message on stderr on any error.
"use strict";

const crypto = require("node:crypto");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

// Generous: a slow, busy CI machine must not fail on latency; this only bounds a hung server.
const DEADLINE_MS = 30000;

const PROTOS_DIR = path.resolve(__dirname, "..", "..", "..", "protos");

function loadService() {
  const definition = protoLoader.loadSync("dialogue/v1/dialogue.proto", {
    includeDirs: [PROTOS_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).dialogue.v1.DialogueService;
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + DEADLINE_MS);
    client[method](request, { deadline }, (error, response) => {
      if (error) {
        reject(new Error(`${method} failed: ${error.code} ${error.details || error.message}`));
      } else {
        resolve(response);
      }
    });
  });
}

function nowTimestamp() {
  const millis = Date.now();
  return { seconds: String(Math.floor(millis / 1000)), nanos: (millis % 1000) * 1e6 };
}

async function driveCall(address) {
  const DialogueService = loadService();
  const client = new DialogueService(address, grpc.credentials.createInsecure());
  const callId = `node-${crypto.randomUUID()}`;
  const call = {
    call_id: callId,
    platform: "PLATFORM_OTHER",
    direction: "CALL_DIRECTION_INBOUND",
    caller: "+8613900000000",
    callee: "10086",
    flow_selector: "10086",
  };
  const steps = [
    ["call_started", {}],
    ["digits_entered", { digits: "1" }],
    ["digits_entered", { digits: "13800138000" }],
    ["call_ended", { hung_up_by: "HANG_UP_PARTY_CALLER", reason: "normal_clearing" }],
  ];
  try {
    for (const [eventName, eventBody] of steps) {
      const requestId = `node-${crypto.randomUUID()}`;
      const request = {
        request_id: requestId,
        call,
        occurred_at: nowTimestamp(),
        [eventName]: eventBody,
      };
      const response = await unary(client, "DecideNextAction", request);
      emit({ step: eventName, call_id: callId, request_id: requestId, response });
    }
    const snapshot = await unary(client, "GetCall", { call_id: callId });
    emit({ step: "get_call", call_id: callId, response: snapshot });
  } finally {
    client.close();
  }
}

function emit(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

async function main() {
  const address = process.argv[2];
  if (!address) {
    throw new Error("usage: node drive_call.js HOST:PORT");
  }
  await driveCall(address);
}

main().catch((error) => {
  process.stderr.write(`drive_call: ${error.message}\n`);
  process.exitCode = 1;
});
