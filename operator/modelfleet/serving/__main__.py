"""``python -m modelfleet.serving``: the built-in server (same flags as ``modelfleet serve``)."""

import sys

from modelfleet.serving.server import main

sys.exit(main())
