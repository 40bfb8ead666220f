"""Gone: netlab.kernel.rtnl is the one rtnetlink codec. One constant stays for trace/kernel.py,
its last importer (the trace split moves it onto netlab.kernel); then this file goes."""

from netlab.kernel.rtnl import RTNH_F_ONLINK  # noqa: F401
