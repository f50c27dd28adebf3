#!/usr/bin/env python3
"""Entry point of the Docker action and of `python entrypoint.py`: the northflank-build command."""

import sys

from northflank_build.cli import main

if __name__ == "__main__":
    sys.exit(main())
