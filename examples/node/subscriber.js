// A subscriber on mdp-broker's event bus (`mdp-broker --pubsub IN OUT`): connects to
// OUT, subscribes to a topic prefix, and prints each event as "TOPIC FRAME...".
//
//     npm install
//     node subscriber.js [ENDPOINT] [TOPIC] [COUNT]
//     node subscriber.js tcp://127.0.0.1:5557 weather. 10
//
// Prints "SUBSCRIBED" once the subscription is sent; stops after COUNT events (0 or
// none: runs until Ctrl-C).
"use strict";
const zmq = require("zeromq");

async function main() {
  const [endpoint = "tcp://127.0.0.1:5557", topic = "", count = "0"] = process.argv.slice(2);
  const socket = new zmq.Subscriber();
  socket.connect(endpoint);
  socket.subscribe(topic);
  console.log("SUBSCRIBED");
  let seen = 0;
  for await (const [eventTopic, ...body] of socket) {
    console.log([eventTopic, ...body].map((frame) => frame.toString()).join(" "));
    seen += 1;
    if (Number(count) > 0 && seen >= Number(count)) {
      break;
    }
  }
  socket.close();
}

main().catch((error) => {
  console.error(`subscriber: ${error.message}`);
  process.exitCode = 1;
});
