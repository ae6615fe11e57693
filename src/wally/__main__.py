import sys

from wally.cli import main

sys.exit(main())
