"""``mdp-broker`` (and ``python -m zmdp.broker``): the Rust broker, in-process, with
the same command line as the binary (``mdp-broker --help``)."""

import sys

from ._zmdp import broker_main


def main() -> None:
    """Runs the broker with this process's arguments until Ctrl-C or SIGTERM."""
    sys.exit(broker_main(["mdp-broker", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
