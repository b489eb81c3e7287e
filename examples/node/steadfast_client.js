#!/usr/bin/env node
// Calls steadfast services from Node with @grpc/grpc-js over the emitted wire protos.
//
// Run with (from the workspace root):
//   cargo run -p steadfast-build --features cli --bin steadfast-codegen -- \
//       wire -I examples/proto --out wire examples/proto/lab/v1/lab.proto
//   cargo run -p steadfast-build --features cli --bin steadfast-codegen -- \
//       wire --out wire steadfast/v1/dispatch.proto
//   (cd examples/node && npm ci)
//   node examples/node/steadfast_client.js --protos wire \
//       --lab-addr 127.0.0.1:50051 --model-addr 127.0.0.1:50052
//
// Checks, in order (`--only a,b` runs some of them):
//   sleep        lab.v1.Lab/Sleep: heartbeats with progress, then the reply; a
//                liveness window and a deadline
//   digest       lab.v1.Lab/Digest: a CODEC_NONE upload with its XXH3-64, the
//                server's sha256 compared with ours
//   digest-zstd  the same upload as one zstd frame (CODEC_ZSTD), where this Node
//                has zlib.zstdCompress (>= 22.15 / 23.8); skipped otherwise
//   dispatch     steadfast.v1.Dispatch/Call: `hello` by name with JSON params,
//                and an unknown name refused with UNIMPLEMENTED
// Prints a line per frame and per result, `FAIL <check>: ...` for each check
// that fails, and exits 1 if any did (2 on bad arguments).
//
// The wire rules it follows (proto/steadfast/v1/frame.proto has them all):
// - A rewritten method is called with the metadata `steadfast-framing: v1`;
//   without it the server serves the original shape (no heartbeats) and
//   refuses blob methods with FAILED_PRECONDITION.
// - Its responses are a stream of frames, `oneof kind { heartbeat; message;
//   blob; chunk }`: heartbeats while the handler works, then one `message`.
// - An upload is a stream `oneof kind { head; blob; chunk }`: the request
//   message, the blob's header (size and codec), then chunks of at most 1 MiB,
//   each with its offset, `last` on the final one.

'use strict';

const crypto = require('node:crypto');
const { once } = require('node:events');
const { parseArgs } = require('node:util');
const zlib = require('node:zlib');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
// XXH3-64 (the CODEC_NONE checksum). Not `xxhash-wasm`: it has XXH32/XXH64
// only, and XXH64 is another hash.
const { xxh3 } = require('@node-rs/xxhash');

// Asks a steadfast server for the wire shape (frames) of a rewritten method.
const FRAMING_KEY = 'steadfast-framing';
const FRAMING_VALUE = 'v1';

// Bytes per chunk: the contract allows up to 1 MiB; 128 KiB is steadfast's
// own default.
const CHUNK_BYTES = 128 * 1024;

// The heartbeat intervals set in examples/proto/lab/v1/lab.proto. The wire
// protos do not carry them (they are options of the original proto), so a
// client is told; the liveness window is 3 of them.
const SLEEP_HEARTBEAT_MS = 500;
const DIGEST_HEARTBEAT_MS = 1000;
const LIVENESS_INTERVALS = 3;

const CHECKS = ['sleep', 'digest', 'digest-zstd', 'dispatch'];

function usage(message) {
  console.error(`${message}
usage: node steadfast_client.js --protos DIR --lab-addr HOST:PORT --model-addr HOST:PORT
         [--only ${CHECKS.join(',')}] [--sleep-ms 2500] [--deadline-ms 20000]
         [--sleep-deadline-ms MS] [--digest-bytes N] [--digest-extra-ms 1500]`);
  process.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        protos: { type: 'string' },
        'lab-addr': { type: 'string' },
        'model-addr': { type: 'string' },
        only: { type: 'string' },
        'sleep-ms': { type: 'string', default: '2500' },
        'deadline-ms': { type: 'string', default: '20000' },
        'sleep-deadline-ms': { type: 'string' },
        'digest-bytes': { type: 'string', default: String(2 * 1024 * 1024 + 12345) },
        'digest-extra-ms': { type: 'string', default: '1500' },
      },
    }));
  } catch (error) {
    usage(error.message);
  }
  const number = (name) => {
    const value = Number(values[name]);
    if (!Number.isSafeInteger(value) || value < 0) usage(`--${name}: not a count: ${values[name]}`);
    return value;
  };
  if (!values.protos) usage('--protos is required');
  const only = values.only ? values.only.split(',') : CHECKS;
  for (const check of only) {
    if (!CHECKS.includes(check)) usage(`--only: no check named ${check}`);
  }
  if (!values['lab-addr'] && only.some((c) => c !== 'dispatch')) usage('--lab-addr is required');
  if (!values['model-addr'] && only.includes('dispatch')) usage('--model-addr is required');
  const deadlineMs = number('deadline-ms');
  return {
    protos: values.protos,
    labAddr: values['lab-addr'],
    modelAddr: values['model-addr'],
    only,
    sleepMs: number('sleep-ms'),
    deadlineMs,
    sleepDeadlineMs: values['sleep-deadline-ms'] ? number('sleep-deadline-ms') : deadlineMs,
    digestBytes: number('digest-bytes'),
    digestExtraMs: number('digest-extra-ms'),
  };
}

// Loads the wire protos. The options matter:
// - `longs: String`: 64-bit integers (uint64, fixed64) come back as decimal
//   strings. The default (Long objects) is awkward, and `longs: Number` is
//   lossy above 2^53, which every other XXH3 checksum is.
// - `oneofs: true`: a frame gets a `kind` field naming the member that is set.
// - `enums: String`: codecs by name (`'CODEC_NONE'`).
// - `keepCase: true`: field names as in the proto (`slept_ms`).
function loadProtos(dir) {
  const definition = protoLoader.loadSync(['lab/v1/lab.proto', 'steadfast/v1/dispatch.proto'], {
    includeDirs: [dir],
    keepCase: true,
    longs: String,
    enums: String,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition);
}

// An error with a gRPC status code, like the ones grpc-js reports.
function statusError(code, details) {
  const error = new Error(`${grpc.status[code]}: ${details}`);
  error.code = code;
  error.details = details;
  return error;
}

// The call options of a call that must end within `ms`. grpc-js sends the
// deadline as `grpc-timeout`: the server drops the handler at it, and the
// call fails with DEADLINE_EXCEEDED here, heartbeats or not.
function within(ms) {
  return { deadline: new Date(Date.now() + ms) };
}

function framing() {
  const metadata = new grpc.Metadata();
  metadata.set(FRAMING_KEY, FRAMING_VALUE);
  return metadata;
}

// Reads the response frames of a call: prints each heartbeat, keeps the one
// `message`, and resolves with it when the call ends OK.
//
// `heartbeatMs` (when set) arms the liveness window: a call with heartbeats
// that sends no frame for LIVENESS_INTERVALS intervals is presumed dead (a
// hung server, a proxy holding the call), cancelled, and fails with
// UNAVAILABLE, as steadfast's own clients do. Without it a hung call would
// wait for its deadline. Frames are counted, not bytes: HTTP/2 pings or
// headers do not show that the handler is alive.
function readFrames(call, label, heartbeatMs) {
  return new Promise((resolve, reject) => {
    let message;
    let settled = false;
    let timer;
    const settle = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else if (message === undefined) reject(new Error('the call ended without a message'));
      else resolve(message);
    };
    const windowMs = heartbeatMs ? LIVENESS_INTERVALS * heartbeatMs : 0;
    const arm = () => {
      if (!windowMs) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        // Settle first: cancel() makes grpc-js report CANCELLED, which is not
        // what happened.
        settle(
          statusError(
            grpc.status.UNAVAILABLE,
            `no frame within ${windowMs} ms (${LIVENESS_INTERVALS} x the ${heartbeatMs} ms heartbeat interval)`,
          ),
        );
        call.cancel();
      }, windowMs);
    };
    arm();
    call.on('data', (frame) => {
      arm();
      switch (frame.kind) {
        case 'heartbeat': {
          const beat = frame.heartbeat;
          // proto3 `optional`: absent when the handler reported none.
          const progress = beat.progress === undefined ? '-' : beat.progress.toFixed(2);
          let line = `${label}: heartbeat seq=${beat.seq} elapsed_ms=${beat.elapsed_ms} progress=${progress}`;
          if (beat.note !== undefined) line += ` note=${beat.note}`;
          console.log(line);
          break;
        }
        case 'message':
          if (message !== undefined) {
            settle(new Error('a second message'));
            call.cancel();
          }
          message = frame.message;
          break;
        default:
          // `blob` and `chunk` come only from methods with response_blob.
          settle(new Error(`unexpected frame kind ${frame.kind}`));
          call.cancel();
      }
    });
    call.on('error', (error) => settle(error));
    call.on('status', (status) => {
      if (status.code === grpc.status.OK) settle();
    });
  });
}

// Writes `message` to a client stream, waiting while its buffer is full
// (grpc-js's backpressure: write() returns false until 'drain'). `frames` is
// the call's readFrames(): a call that fails meanwhile (an error status, the
// liveness window) sends no 'drain', and must not leave the writer waiting.
async function send(call, message, frames) {
  if (!call.write(message)) await Promise.race([once(call, 'drain'), frames]);
}

// --- the checks ------------------------------------------------------------

async function checkSleep(lab, options) {
  const call = lab.Sleep({ millis: options.sleepMs }, framing(), within(options.sleepDeadlineMs));
  const reply = await readFrames(call, 'sleep', SLEEP_HEARTBEAT_MS);
  console.log(`sleep: reply slept_ms=${reply.slept_ms}`);
  if (Number(reply.slept_ms) < options.sleepMs) {
    throw new Error(`slept ${reply.slept_ms} ms, asked for ${options.sleepMs}`);
  }
}

// Deterministic test bytes (xorshift32), so a run is repeatable.
function testBytes(size) {
  const bytes = Buffer.alloc(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

// Uploads `wire` (the blob's bytes as they travel) to Digest and returns the
// reply. `lastChunk` adds fields to the final chunk (the CODEC_NONE checksum).
async function digestUpload(lab, label, options, size, codec, wire, lastChunk) {
  const call = lab.Digest(framing(), within(options.deadlineMs));
  const frames = readFrames(call, label, DIGEST_HEARTBEAT_MS);
  // Keep a failure of the call from being an unhandled rejection while we
  // are still writing; it is awaited below.
  frames.catch(() => {});
  try {
    await send(call, { head: { extra_millis: options.digestExtraMs } }, frames);
    // `size` is uint64: a decimal string is exact at any size.
    await send(call, { blob: { size: String(size), codec } }, frames);
    let offset = 0;
    do {
      const data = wire.subarray(offset, offset + CHUNK_BYTES);
      const last = offset + data.length === wire.length;
      await send(
        call,
        { chunk: { data, offset: String(offset), last, ...(last ? lastChunk : {}) } },
        frames,
      );
      offset += data.length;
    } while (offset < wire.length);
    call.end();
  } catch (error) {
    // A write after the call failed: the call's own error says why.
    call.cancel();
  }
  return frames;
}

async function checkDigest(lab, options, bytes) {
  // XXH3-64 with seed 0, fed as the bytes go (here all at once; a file would
  // be hashed chunk by chunk the same way).
  const hasher = xxh3.Xxh3.withSeed(0n);
  hasher.update(bytes);
  const xxh = hasher.digest(); // a BigInt in 0 .. 2^64-1
  // The BigInt trap. `checksum` is `optional fixed64`, and Node numbers are
  // doubles: `Number(xxh)` keeps 53 bits, so the low bits of most checksums
  // are silently rounded away, the encoding succeeds, and the server answers
  // DATA_LOSS (checksum mismatch). Pass the unsigned value as a decimal
  // string: protobufjs parses it into the exact 64 bits. (A BigInt itself
  // happens to work with protobufjs 7.6 and long 5.3, but the string is what
  // `longs: String` gives back too, and what every version accepts.)
  const checksum = xxh.toString(10);
  console.log(`digest: xxh3=${checksum} (${bytes.length} bytes, CODEC_NONE)`);
  const reply = await digestUpload(lab, 'digest', options, bytes.length, 'CODEC_NONE', bytes, {
    checksum,
  });
  compareDigest('digest', reply, bytes);
}

function compareDigest(label, reply, bytes) {
  const ours = crypto.createHash('sha256').update(bytes).digest('hex');
  console.log(`${label}: size=${reply.size} sha256=${reply.sha256_hex}`);
  if (reply.sha256_hex !== ours || Number(reply.size) !== bytes.length) {
    throw new Error(`the server read ${reply.size} bytes with sha256 ${reply.sha256_hex}; we sent ${bytes.length} with ${ours}`);
  }
  console.log(`${label}: sha256 matches`);
}

// CODEC_ZSTD: the blob is ONE zstd frame carrying zstd's content checksum
// (the server refuses a frame without it), cut into chunks at any byte;
// offsets count compressed bytes and no `checksum` field is sent.
async function checkDigestZstd(lab, options, bytes) {
  if (typeof zlib.zstdCompressSync !== 'function') {
    console.log(
      `digest-zstd: skipped: Node ${process.version} has no zlib.zstdCompress (Node >= 22.15 or 23.8 has); ` +
        'older ones need a zstd binding from npm that can set the content checksum flag',
    );
    return;
  }
  // One shot for brevity; zlib.createZstdCompress() with the same params
  // streams a file in bounded memory.
  const wire = zlib.zstdCompressSync(bytes, {
    params: {
      [zlib.constants.ZSTD_c_checksumFlag]: 1,
      [zlib.constants.ZSTD_c_compressionLevel]: 3,
    },
    pledgedSrcSize: bytes.length,
  });
  console.log(`digest-zstd: ${bytes.length} bytes as ${wire.length} compressed`);
  const reply = await digestUpload(lab, 'digest-zstd', options, bytes.length, 'CODEC_ZSTD', wire, {});
  compareDigest('digest-zstd', reply, bytes);
}

// One dispatch call: `x-func-name` picks the function, the head carries the
// params as JSON bytes, the result comes back as JSON bytes in `message`.
async function dispatch(model, name, params, options) {
  const metadata = new grpc.Metadata();
  metadata.set('x-func-name', name);
  const call = model.Call(metadata, within(options.deadlineMs));
  // `hello` sends no heartbeats: no liveness window, the deadline bounds it.
  const frames = readFrames(call, `dispatch ${name}`, 0);
  frames.catch(() => {});
  call.write({ head: { params: Buffer.from(JSON.stringify(params)) } });
  call.end();
  const result = await frames;
  return JSON.parse(Buffer.from(result.result).toString('utf8'));
}

async function checkDispatch(model, options) {
  const greeting = await dispatch(model, 'hello', { name: 'Ada' }, options);
  console.log(`dispatch hello: ${JSON.stringify(greeting)}`);
  if (typeof greeting !== 'string' || !greeting.startsWith('hello, Ada from ')) {
    throw new Error(`unexpected greeting ${JSON.stringify(greeting)}`);
  }
  try {
    const result = await dispatch(model, 'no-such', { name: 'Ada' }, options);
    throw new Error(`an unknown name was answered: ${JSON.stringify(result)}`);
  } catch (error) {
    if (error.code !== grpc.status.UNIMPLEMENTED) throw error;
    console.log(`dispatch no-such: status UNIMPLEMENTED ${error.details}`);
    if (!error.details.includes('hello')) throw new Error('the refusal does not list the known names');
  }
}

// --- main --------------------------------------------------------------------

function describe(error) {
  return error.code !== undefined && grpc.status[error.code] !== undefined
    ? `status ${grpc.status[error.code]} ${error.details}`
    : error.message;
}

// Waits until the channel is connected, so that the liveness window times
// the call, not the connection setup.
function ready(client, ms) {
  return new Promise((resolve, reject) =>
    client.waitForReady(new Date(Date.now() + ms), (error) =>
      error ? reject(statusError(grpc.status.UNAVAILABLE, `not connected: ${error.message}`)) : resolve(),
    ),
  );
}

async function main() {
  const options = parseOptions();
  const wire = loadProtos(options.protos);
  const credentials = grpc.credentials.createInsecure();
  const lab = options.labAddr && new wire.lab.v1.Lab(options.labAddr, credentials);
  const model = options.modelAddr && new wire.steadfast.v1.Dispatch(options.modelAddr, credentials);
  const bytes = testBytes(options.digestBytes);
  const run = {
    sleep: () => checkSleep(lab, options),
    digest: () => checkDigest(lab, options, bytes),
    'digest-zstd': () => checkDigestZstd(lab, options, bytes),
    dispatch: () => checkDispatch(model, options),
  };
  let failed = 0;
  for (const check of options.only) {
    try {
      await ready(check === 'dispatch' ? model : lab, options.deadlineMs);
      await run[check]();
    } catch (error) {
      failed += 1;
      console.log(`FAIL ${check}: ${describe(error)}`);
    }
  }
  if (lab) lab.close();
  if (model) model.close();
  console.log(failed ? `${failed} check(s) failed` : 'all checks passed');
  process.exitCode = failed ? 1 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
