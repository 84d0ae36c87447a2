import sys

from cidwatch.cli import main

if __name__ == "__main__":  # not when a worker process of `replay` imports it (multiprocessing spawn)
    sys.exit(main())
