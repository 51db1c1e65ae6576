// An MDP/0.1 client in Node.js: calls a service through mdp-broker and prints each
// frame of the reply on a line. The worker can be anything the broker serves: a Rust
// mdp::Worker, a Python majortomo worker, `mdp worker SERVICE -- CMD`...
//
//     npm install                      # zeromq v6: prebuilt, no compiler needed
//     node mdp_client.js [ENDPOINT] [SERVICE] [FRAME...]
//     node mdp_client.js tcp://127.0.0.1:5555 echo hello world
//
// Exit status: 0 with a reply, 1 when none came within 5 s (MDP_TIMEOUT_MS).
"use strict";
const zmq = require("zeromq");

// MDP/0.1 (RFC 7): a client sends [empty, "MDPC01", service, body...] and gets
// [empty, "MDPC01", service, body...] back; the REQ socket adds and strips the empty
// frame.
const MDPC01 = "MDPC01";

async function call(endpoint, service, frames, timeoutMs) {
  const socket = new zmq.Request({ receiveTimeout: timeoutMs, linger: 0 });
  socket.connect(endpoint);
  try {
    await socket.send([MDPC01, service, ...frames]);
    const [header, replyService, ...body] = await socket.receive();
    if (header.toString() !== MDPC01) {
      throw new Error(`not an MDP/0.1 reply: header ${JSON.stringify(header.toString())}`);
    }
    return { service: replyService.toString(), body };
  } finally {
    socket.close();
  }
}

async function main() {
  const [endpoint = "tcp://127.0.0.1:5555", service = "echo", ...frames] = process.argv.slice(2);
  const timeoutMs = Number(process.env.MDP_TIMEOUT_MS || 5000);
  try {
    const reply = await call(endpoint, service, frames.length ? frames : ["hello"], timeoutMs);
    for (const frame of reply.body) {
      console.log(frame.toString());
    }
  } catch (error) {
    const reason = error.code === "EAGAIN" ? `no reply within ${timeoutMs} ms` : error.message;
    console.error(`mdp_client: ${service}: ${reason}`);
    process.exitCode = 1;
  }
}

module.exports = { call };
if (require.main === module) {
  main();
}
