from wally.functional import *  # noqa: F403
