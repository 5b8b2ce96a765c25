"""``python -m nasc`` is the ``nasc`` command."""

import sys

from nasc.cli import main

sys.exit(main())
