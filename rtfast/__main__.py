import sys

from rtfast.cli import main

sys.exit(main())
