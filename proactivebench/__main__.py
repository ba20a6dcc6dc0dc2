"""`python -m proactivebench` is the `proactivebench` command."""

import sys

from proactivebench.cli import main

sys.exit(main())
