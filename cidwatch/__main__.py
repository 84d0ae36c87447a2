import sys

from cidwatch.cli import main

sys.exit(main())
