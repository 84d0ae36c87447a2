"""`python -m streams worker ...`: the same as `cidwatch worker ...`."""

import sys

from cidwatch.cli import main

sys.exit(main(sys.argv[1:]))
