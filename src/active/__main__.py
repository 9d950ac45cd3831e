import sys

from active.cli import main

sys.exit(main())
