//! Invalid Majordomo messages of every kind, as a DEALER sends them to the broker.

use bytes::Bytes;
use zmtp::Message;

use crate::junk::Junk;

/// Invalid MDP messages of every kind (frames after the ROUTER's routing id), for
/// round `round` of the flood. None is a request to a real service or a READY for
/// a service of the test's.
pub fn malformed_mdp(round: usize, junk: &mut Junk, big: &Bytes) -> Vec<Message> {
    let e = "";
    // Trailing junk, for messages that stay invalid whatever follows.
    let len = junk.below(100);
    let body = Bytes::from(junk.bytes(len));
    let with_body = |frames: &[&'static str]| {
        let mut msg: Message = frames
            .iter()
            .map(|f| Bytes::from_static(f.as_bytes()))
            .collect();
        msg.push_back(body.clone());
        msg
    };
    let mut messages = vec![
        Message::from([e]),                               // one empty frame
        Message::from([e, "MDPC01"]),                     // REQUEST without a service
        Message::from(["MDPC02", "\x01"]),                // 0.2 REQUEST without a service
        Message::from([e, "0"]),                          // Overseer request without a service
        Message::from([e, "MDPW01", "\x01"]),             // READY without a service
        with_body(&[e]),                                  // unknown header after the empty frame
        with_body(&[e, e]),                               // an empty header
        with_body(&[e, "MDPX99", "echo"]),                // wrong protocol header
        with_body(&["MDPC01", "echo"]),                   // 0.1 header without the empty frame
        with_body(&[e, "MDPW01", "\x09"]),                // unknown worker command (0.1)
        with_body(&["MDPW02", "\x7f"]),                   // unknown worker command (0.2)
        with_body(&[e, "MDPC02", "\x05", "echo"]),        // unknown client command (majortomo)
        with_body(&["MDPC02", "\x02", "echo"]),           // a 0.2 client sending a reply code
        with_body(&[e, "1", "9"]),                        // unknown Overseer worker command
        with_body(&[e, "MDPW01", "\x03", "nobody", e]),   // REPLY from a non-worker
        with_body(&[e, "MDPW02", "\x04", "nobody", e]),   // FINAL from a non-worker
        with_body(&[e, "MDPW01", "\x04"]),                // HEARTBEAT from a non-worker
        with_body(&[e, "MDPW01", "\x01", "mmi.x"]),       // READY for a reserved service
        with_body(&[e, "MDPW01", "\x01", "flood"]),       // READY...
        with_body(&[e, "MDPW01", "\x01", "flood"]),       // ...and a second READY
        with_body(&[e, "MDPW01", "\x03", "client", "x"]), // non-empty separator
        Message::from([e, "MDPW01", "\x03", "client"]),   // REPLY without the separator
    ];
    if round % 50 == 49 {
        // Bodies large but within the broker's limit.
        let big = |frames: [&'static str; 3]| {
            let mut msg = Message::from(frames);
            msg.push_back(big.clone());
            msg
        };
        messages.push(big([e, "MDPW01", "\x09"]));
        messages.push(big([e, "MDPX99", "echo"]));
    }
    // Random frames.
    for _ in 0..4 {
        let frames: Vec<Bytes> = (0..=junk.below(8))
            .map(|_| {
                let len = junk.below(64);
                Bytes::from(junk.bytes(len))
            })
            .collect();
        messages.push(frames.into_iter().collect());
    }
    messages
}
