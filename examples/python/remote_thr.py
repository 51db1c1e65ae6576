"""libzmq (pyzmq) twin of examples/remote_thr.rs: DEALER connects and sends."""
import sys, zmq

endpoint, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.connect(endpoint)
msg = b"\0" * size
for _ in range(count):
    s.send(msg, copy=False)
s.close(linger=-1)
ctx.term()
