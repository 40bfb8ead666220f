"""Where a topology came from, when not from a file: the words the state, `list` and the errors use."""

DICT_SOURCE = "<dict>"  # the origin of a topology given as a dict (the API, the pytest plugin)
BUILT_IN = "built-in default"  # the origin of the built-in default topology
