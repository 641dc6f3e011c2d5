"""`python -m patchwarden.agent` is `patchwarden-agent`."""

import sys

from patchwarden.agent.cli import main

sys.exit(main())
