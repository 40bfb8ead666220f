"""The Container Network Interface, as a container runtime speaks it (libcni's semantics).

conf (pure): the networks a pod is attached to, each plugin's stdin config
(name, cniVersion, prevResult, runtimeConfig), CNI_ARGS, result conversion.
invoke: one plugin call (environment, stdin, timeout, the node's namespace),
recorded. runtime: ADD/DEL/CHECK through a chain, with the result cache.
lifecycle: the lab feature (up ADDs, status CHECKs, down DELs).
retry: a pod whose ADD a plugin failed is DELed and ADDed again as a new sandbox, a few times.
"""
