"""Where Debian's containernetworking-plugins are: a CNI lab's default binDir (model/topology.py), and the machine's
folder of the reference chain's plugins (realize/cni_path.py), which a command that loads no model reads too."""

CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
