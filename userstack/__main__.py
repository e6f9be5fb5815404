"""The `userstack` command's front door (also `python -m userstack`).

`userstack ss` is typed while something is happening: a transfer stalls, a TIME-WAIT counts
down. It has to answer at once, so it loads only userstack.cli_ss and what that needs (the
control socket's client, the table's format, trio), not the whole command line: the stack,
the TUN link, the apps, the demo and the viewers that userstack.cli imports for its other
subcommands cost more than twice as much again at every start. Every other command, and
`userstack --help`, goes to userstack.cli.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["ss"]:
        from .cli import main as whole_command_line

        return whole_command_line(argv)
    from .cli_ss import main as ss

    try:
        return ss(argv[1:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
