"""`python -m unicl ...` (what `torchrun -m unicl train ...` runs)."""

import sys

from unicl.cli.main import main

sys.exit(main())
