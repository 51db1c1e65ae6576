"""Writes the `broker` seed corpus (scenarios for the broker's state machine: a reply
served for every pair of client framing and worker dialect, streaming and gathered
replies, MMI, dead and expired workers, TTL expiry, full queues, quotas that pause and
resume clients, reconnections that reuse a routing id, undeliverable messages,
misbehaving workers, malformed messages, shutdown) in the input encoding of
src/broker.rs. The corpus also
keeps inputs the fuzzer found (a regression, and a coverage-minimised selection); this
script only (re)writes the hand-made seeds, which mdp/tests/broker_fuzz_corpus.rs
checks reach the states they are written for."""
import hashlib
import pathlib

HERE = pathlib.Path(__file__).resolve().parent

# Step kinds (high nibble; the low three bits are the peer).
(
    REQUEST, READY, PARTIAL, FINAL, HEARTBEAT, DISCONNECT, RAW, CLOSE, TICK, WAIT, SHUTDOWN,
    RECONNECT, UNDELIVERABLE,
) = range(0x00, 0xD0, 0x10)
# Worker dialects (Dialect::ALL), client framings (FRAMINGS), services (SERVICES).
MDP01, MDP02, MAJORTOMO, OVERSEER = range(4)
DIALECTS = [MDP01, MDP02, MAJORTOMO, OVERSEER]
C01, C02, C02_REQ, C_MAJORTOMO, C_OVERSEER = range(5)
FRAMINGS = [C01, C02, C02_REQ, C_MAJORTOMO, C_OVERSEER]
ECHO, ADD, MMI_SERVICE, MMI_FOO, EMPTY = range(5)
STRANGER = 8
STEP_MS = 25


def config(drop=False, max_queue=7, total=15, small=False):
    """`total`: the total quota in requests; a connection gets a quarter of it, an
    address half, services without workers half (a quarter per address)."""
    assert 0 <= max_queue <= 7 and total % 2 == 1 and 1 <= total <= 15
    return bytes([int(drop) | max_queue << 1 | (total - 1) // 2 << 4 | int(small) << 7])


def body(frames=1, size=3, asks=None):
    """`frames` frames of `size` bytes, after one naming SERVICES[asks] if given."""
    assert 0 <= frames <= 3 and 0 <= size <= 7
    b = frames | size << 2
    if asks is not None:
        assert asks <= 3
        b |= 0x20 | asks << 6
    return b


def request(peer, framing, service, b=body()):
    return bytes([REQUEST | peer, framing, service, b])


def ready(peer, dialect, service=ECHO):
    return bytes([READY | peer, dialect, service])


def partial(peer, dialect, client, b=body()):
    return bytes([PARTIAL | peer, dialect, client, b])


def final(peer, dialect, client, b=body()):
    return bytes([FINAL | peer, dialect, client, b])


def heartbeat(peer, dialect):
    return bytes([HEARTBEAT | peer, dialect])


def disconnect(peer, dialect):
    return bytes([DISCONNECT | peer, dialect])


def raw(peer, frames):
    assert len(frames) < 8
    data = bytes([RAW | peer, len(frames)])
    for frame in frames:
        data += bytes([len(frame)]) + frame
    return data


def close(peer):
    return bytes([CLOSE | peer])


def _steps(ms):
    assert ms % STEP_MS == 0 and ms // STEP_MS <= 255
    return ms // STEP_MS


def tick(ms):
    return bytes([TICK, _steps(ms)])


def wait(ms):
    return bytes([WAIT, _steps(ms)])


def shutdown():
    return bytes([SHUTDOWN])


def reconnect(peer, address):
    return bytes([RECONNECT | peer, address])


def undeliverable(peer):
    return bytes([UNDELIVERABLE | peer])


def seed(cfg, *steps):
    return cfg + b"".join(steps)


seeds = []
# A worker of every dialect serves a client of every framing (worker 0, client 1),
# with a heartbeat both ways.
for worker in DIALECTS:
    for client in FRAMINGS:
        seeds.append(
            seed(
                config(),
                ready(0, worker),
                request(1, client, ECHO, body(2, 3)),
                tick(1000),
                heartbeat(0, worker),
                final(0, worker, 1, body(1, 2)),
            )
        )
# PARTIALs then FINAL: gathered for MDP/0.1 and Overseer clients (also past the
# maximum message size), streamed to MDP/0.2 and majortomo ones.
for worker in [MDP02, MAJORTOMO]:
    for client, small in [(C01, False), (C_OVERSEER, False), (C01, True), (C02, False), (C_MAJORTOMO, False)]:
        seeds.append(
            seed(
                config(small=small),
                ready(0, worker),
                request(1, client, ECHO),
                partial(0, worker, 1, body(1, 5)),
                partial(0, worker, 1, body(2, 2)),
                final(0, worker, 1, body(1, 1)),
            )
        )
# MMI: 200 for a served name, 404 for one without workers, 501 for other mmi.*.
seeds.append(
    seed(
        config(),
        ready(0, MDP01, ECHO),
        request(1, C01, MMI_SERVICE, body(0, 0, asks=ECHO)),
        request(1, C02, MMI_SERVICE, body(0, 0, asks=ADD)),
        request(1, C_MAJORTOMO, MMI_FOO, body(1, 1)),
        request(1, C_OVERSEER, MMI_SERVICE, body(0, 0, asks=ECHO)),
        tick(3000),
        request(1, C02_REQ, MMI_SERVICE, body(0, 0, asks=ECHO)),
    )
)
# A busy worker's connection goes away: its request goes to the other worker (or,
# with `drop`, is dropped); the client's reply still comes.
for drop in [False, True]:
    seeds.append(
        seed(
            config(drop=drop),
            ready(0, MDP01, ADD),
            request(1, C01, ADD),
            ready(2, MAJORTOMO, ADD),
            close(0),
            final(2, MAJORTOMO, 1),
        )
    )
# A busy worker that stops heartbeating expires; the other (which heartbeats) gets its
# request.
seeds.append(
    seed(
        config(),
        ready(0, OVERSEER, ADD),
        request(1, C_OVERSEER, ADD),
        ready(2, MDP02, ADD),
        tick(1000),
        heartbeat(2, MDP02),
        tick(1000),
        heartbeat(2, MDP02),
        tick(1000),
        final(2, MDP02, 1),
    )
)
# A busy worker leaves with DISCONNECT; then it sends a reply as a stranger would.
seeds.append(
    seed(
        config(),
        ready(0, MDP02, ECHO),
        request(1, C02, ECHO),
        request(3, C01, ECHO),
        disconnect(0, MDP02),
        final(0, MDP02, 1),
        ready(0, MDP02, ECHO),
        final(0, MDP02, 1),
        final(0, MDP02, 3),
    )
)
# Requests without workers wait, then expire after the TTL.
seeds.append(seed(config(), request(1, C01, ADD), tick(2500), request(2, C02, ADD), tick(2500), tick(2500)))
# Full queues: max_queue 2, then a total of 3.
seeds.append(seed(config(max_queue=2), *[request(1, C01, ADD, body(1, n)) for n in range(4)]))
seeds.append(
    seed(config(total=3), request(1, C01, ECHO), request(1, C01, ADD), request(1, C01, EMPTY), request(1, C01, ECHO))
)
# Quotas: a client (a quarter of 15: 3 requests) is paused at its quota while one
# worker serves it, taken up to twice that, and resumed as it is served; a second
# connection from the same address shares the address's quota; big bodies reach the
# byte bounds first.
seeds.append(
    seed(
        config(),
        ready(0, MDP01, ECHO),
        *[request(1, C01, ECHO, body(1, 1)) for _ in range(8)],
        *[final(0, MDP01, 1) for _ in range(6)],
        reconnect(1, 0),
        *[request(1, C02, ECHO, body(3, 7)) for _ in range(4)],
        request(4, C01, ECHO, body(3, 7)),
        *[final(0, MDP01, 1) for _ in range(4)],
    )
)
# Services without workers have a share: requests for them beyond it are refused,
# not paused, while a served service goes on.
seeds.append(
    seed(
        config(),
        ready(0, MDP02, ECHO),
        *[request(1, C01, ADD) for _ in range(5)],
        request(2, C01, ADD),
        request(1, C01, ECHO),
        final(0, MDP02, 1),
        ready(3, MDP01, ADD),
        final(3, MDP01, 1),
    )
)
# A client leaves with a request in flight and comes back on a new connection (its
# routing id reused): the worker's reply goes to nobody; a worker reconnects before its
# old connection's departure, which then requeues its request to the new one; a
# worker whose queue is full is dropped and its request requeued.
seeds.append(
    seed(
        config(),
        ready(0, MDP01, ECHO),
        request(1, C01, ECHO),
        close(1),
        request(1, C01, MMI_SERVICE, body(0, 0, asks=ECHO)),
        final(0, MDP01, 1),
        request(1, C01, ECHO),
        reconnect(0, 1),
        ready(0, MAJORTOMO, ECHO),
        close(0),
        final(0, MAJORTOMO, 1),
        close(0),
        ready(2, MDP02, ECHO),
        request(1, C01, ECHO),
        ready(3, MDP01, ECHO),
        undeliverable(2),
        final(3, MDP01, 1),
        close(5),
    )
)
# max_queue 0 admits nothing (and must not keep an entry per service name asked for).
seeds.append(seed(config(max_queue=0), request(1, C01, ECHO), request(2, C02, ADD), ready(0, MDP01, ADD)))
# A client's connection goes away: its waiting requests are dropped, its request in
# flight is still answered (into the void); requests dropped behind a waiting one
# must not pile up in the queue.
seeds.append(
    seed(
        config(),
        request(1, C01, ADD),
        request(2, C01, ADD),
        request(2, C01, ADD),
        request(2, C01, ADD),
        close(2),
        request(2, C01, ADD),
        request(2, C01, ADD),
        close(2),
        ready(0, MDP01, ADD),
        close(1),
        final(0, MDP01, 1),
    )
)
# Misbehaving workers: READY for mmi.*, a second READY (while busy), speaking before
# READY, replying for another client.
seeds.append(
    seed(
        config(),
        ready(0, MDP01, MMI_SERVICE),
        ready(1, MDP02, ECHO),
        request(4, C02, ECHO),
        ready(1, MDP02, ECHO),
        heartbeat(2, OVERSEER),
        final(3, MAJORTOMO, 4),
        ready(3, MAJORTOMO, ECHO),
        final(3, MAJORTOMO, STRANGER),
        final(3, MAJORTOMO, 5),
        final(3, MAJORTOMO, 4),
    )
)
# Malformed and raw messages: unknown header, one junk frame, no frames, a request
# and a READY sent raw, a worker command cut short.
seeds.append(
    seed(
        config(),
        raw(0, [b"", b"MDPX01", b"s"]),
        raw(0, [b"junk"]),
        raw(0, []),
        raw(1, [b"", b"MDPW01", b"\x01", b"echo"]),
        raw(2, [b"MDPC02", b"\x01", b"echo", b"hi"]),
        raw(1, [b"", b"MDPW01", b"\x03", b"peer-2"]),
        raw(1, [b"", b"MDPW01", b"\x03", b"peer-2", b"", b"HI"]),
    )
)
# Shutdown with workers, a request in flight and one waiting; the broker carries on.
seeds.append(
    seed(
        config(),
        ready(0, MDP01, ECHO),
        ready(1, MAJORTOMO, ADD),
        request(2, C01, ECHO),
        request(2, C01, EMPTY),
        shutdown(),
        final(0, MDP01, 2),
        ready(0, MDP01, ECHO),
        request(2, C01, ECHO),
        final(0, MDP01, 2),
    )
)
# Time passes without ticks, then one late tick expires everything at once.
seeds.append(
    seed(config(), ready(0, MDP01, ECHO), request(1, C01, ECHO), request(2, C01, ECHO), wait(6375), tick(0), request(1, C01, ECHO))
)

out = HERE / "corpus/broker"
out.mkdir(parents=True, exist_ok=True)
for data in seeds:
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
print(len(seeds), "seeds,", len(list(out.iterdir())), "files")
