"""`python -m foundations ...` runs the `foundations` command line (the C++
CLI on PATH), as the original's module did."""

import os
import shutil
import sys


def main():
    cli = shutil.which("foundations")
    if cli is None:
        print("foundations: the `foundations` command is not on PATH", file=sys.stderr)
        return 127
    os.execv(cli, [cli] + sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
