"""Entry point for the synthetic data generator: `python jobs/generate.py --customers 5000 --seed 7 --out data`."""

import sys

from cdp.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
