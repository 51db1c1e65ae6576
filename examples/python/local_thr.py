"""libzmq (pyzmq) twin of examples/local_thr.rs: ROUTER binds and measures."""
import sys, time, zmq

endpoint, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = zmq.Context().socket(zmq.ROUTER)
s.bind(endpoint)
first = s.recv_multipart()
assert len(first[1]) == size
start = time.perf_counter()
for _ in range(count - 1):
    s.recv_multipart()
elapsed = time.perf_counter() - start
rate = (count - 1) / elapsed
print(f"message size: {size} B, count: {count}, {rate:.0f} msg/s, {rate * size * 8 / 1e6:.1f} Mb/s")
