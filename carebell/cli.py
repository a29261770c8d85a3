"""The `carebell` command: Django's management commands and carebell's own.

`carebell seed-demo` and `carebell seed_demo` are the same command: our commands are
spelled with hyphens on the command line and underscores in Python.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) > 1 and not argv[1].startswith("-"):
        argv[1] = argv[1].replace("-", "_")
    argv[0] = "carebell"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carebell.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
