"""Writes the `peering` seed corpus (scenarios for three peered brokers: a request
served through a peer, partial replies, a broker killed with a request in flight, a
link dropped, a broker dialing itself, forged MDPB01 from a link, a silent peer) in
the input encoding of src/peering.rs."""
import hashlib
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
(REQUEST, READY, PARTIAL, FINAL, LEAVE, DIAL, DROP, DELIVER, TICK, FORGE, KILL) = range(11)
MDP01, MDP02, MAJORTOMO = range(3)
ECHO, ADD, MMI = range(3)


def op(kind, broker=0):
    return bytes([kind << 4 | broker])


def mesh():
    out = b""
    for a, t in [(0, 1), (0, 2), (1, 2)]:
        out += op(DIAL, a) + bytes([t])
    return out + deliver_all()


def deliver_all(rounds=4):
    out = b""
    for _ in range(rounds):
        for b in range(3):
            out += op(DELIVER, b) + bytes([0, 15])
    return out


def request(broker, client=0, framing=MDP02, service=ECHO, length=3):
    return op(REQUEST, broker) + bytes([client, framing, service, length])


def ready(broker, worker=0, service=ECHO):
    return op(READY, broker) + bytes([worker, service])


def answer(kind, worker=0):
    return op(kind) + bytes([worker])


SEEDS = {
    "served-through-a-peer": mesh() + ready(1) + deliver_all() + request(0)
    + deliver_all() + answer(FINAL) + deliver_all(),
    "partials-through-a-peer": mesh() + ready(2) + deliver_all() + request(0, framing=MDP01)
    + request(0, client=1) + deliver_all() + answer(PARTIAL) + deliver_all()
    + answer(FINAL) + deliver_all() + answer(FINAL) + deliver_all(),
    "broker-killed-with-a-request": mesh() + ready(1) + ready(2, worker=1) + deliver_all()
    + request(0) + request(0, client=1) + deliver_all() + op(KILL, 1) + deliver_all()
    + answer(FINAL, 1) + deliver_all() + op(TICK) + bytes([40]) + deliver_all(),
    "link-dropped": mesh() + ready(1) + deliver_all() + request(0) + deliver_all()
    + op(DROP, 0) + bytes([0]) + op(DROP, 0) + bytes([1]) + deliver_all()
    + op(TICK) + bytes([100]) + deliver_all(),
    "dialing-itself": op(DIAL, 0) + bytes([0]) + deliver_all() + ready(0) + request(0, service=ADD)
    + op(TICK) + bytes([30]) + deliver_all(),
    "forged-commands": mesh() + ready(1) + deliver_all() + request(0) + deliver_all()
    + b"".join(op(FORGE, b) + bytes([i, k, g, s, 3, 1])
               for b in range(3) for i in range(2) for k in range(7)
               for g, s in [(0, ECHO), (1, ADD)])
    + deliver_all(),
    "silent-peer": mesh() + ready(1) + deliver_all() + request(0)
    + op(DELIVER, 1) + bytes([0, 0]) + op(TICK) + bytes([20]) + op(TICK) + bytes([20])
    + op(TICK) + bytes([20]) + deliver_all(),
    "worker-leaves-with-peer-requests-waiting": mesh() + ready(1) + deliver_all()
    + request(0) + request(0, client=1) + request(2, client=2) + deliver_all()
    + op(LEAVE) + bytes([0]) + deliver_all() + ready(2, worker=3) + deliver_all()
    + answer(FINAL, 3) + deliver_all(),
}


def main():
    corpus = HERE / "corpus" / "peering"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        path = corpus / ("seed-" + name + "-" + hashlib.sha1(data).hexdigest()[:12])
        for old in corpus.glob("seed-" + name + "-*"):
            old.unlink()
        path.write_bytes(data)
        print(path.relative_to(HERE), len(data))


if __name__ == "__main__":
    main()
