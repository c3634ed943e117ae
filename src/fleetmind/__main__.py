"""``python -m fleetmind`` runs the command line."""

import sys

from fleetmind.cli.main import main

sys.exit(main())
