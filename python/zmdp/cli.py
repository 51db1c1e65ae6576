"""``mdp`` (and ``python -m zmdp.cli``): the Rust command line, in-process: call
services, list them, ping the broker, serve a service with a shell command."""

import sys

from ._zmdp import mdp_main


def main() -> None:
    """Runs ``mdp`` with this process's arguments."""
    sys.exit(mdp_main(["mdp", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
