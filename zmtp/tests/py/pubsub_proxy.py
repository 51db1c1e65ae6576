"""A libzmq forwarder for the PUB/SUB interop tests: zmq.proxy between an XSUB socket
(publishers connect here) and an XPUB socket (subscribers connect here).

Options (argv): --xsub EP, --xpub EP: where to bind each side (tcp://127.0.0.1:* or
ipc://PATH).

Prints "READY xsub <endpoint>" then "READY xpub <endpoint>" (the real endpoints once
bound), then forwards until it is killed. Anything that goes wrong prints
"ERROR <reason>" (plus a traceback on stderr) and exits with status 1.
"""

import argparse
import sys
import traceback

import zmq


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--xsub", required=True)
    parser.add_argument("--xpub", required=True)
    args = parser.parse_args()
    try:
        ctx = zmq.Context()
        frontend = ctx.socket(zmq.XSUB)
        frontend.linger = 0
        frontend.bind(args.xsub)
        backend = ctx.socket(zmq.XPUB)
        backend.linger = 0
        backend.bind(args.xpub)
        print("READY xsub", frontend.getsockopt_string(zmq.LAST_ENDPOINT))
        print("READY xpub", backend.getsockopt_string(zmq.LAST_ENDPOINT))
        zmq.proxy(frontend, backend)
    except Exception as e:  # report any failure on stdout for the test, details on stderr
        traceback.print_exc()
        print("ERROR", repr(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
