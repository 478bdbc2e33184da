"""`python -m gadgetbook` runs the terminal front end."""

import sys

from gadgetbook.cli import main

sys.exit(main())
