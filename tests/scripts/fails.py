"""A script that fails on its own: argv[1] 'raise' raises ValueError, 'exit' calls sys.exit(3)."""

import sys

print("script ran with", sys.argv[1:])


def broken_helper():
    raise ValueError("the script's own bug")


if sys.argv[1] == "raise":
    broken_helper()
sys.exit(3)
