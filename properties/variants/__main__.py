import sys

from properties.variants._runner import main

sys.exit(main())
