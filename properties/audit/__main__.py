import sys

from properties.audit import main, merge

sys.exit(merge.main(sys.argv[2:]) if sys.argv[1:2] == ["merge"] else main())
