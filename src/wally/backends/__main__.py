"""``python -m wally.backends``: print the convolution's dispatch table in Markdown, or with
``plans`` the choices made inside its kernels (the copies in ``docs/CONVOLUTION.md`` are this
output)."""

import sys

from wally.backends.conv import algorithms, plans_markdown

print(plans_markdown() if sys.argv[1:] == ["plans"] else algorithms().markdown(), end="")
