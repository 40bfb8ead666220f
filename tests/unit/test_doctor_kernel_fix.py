"""netlab doctor's fix for a kernel feature: modprobe, a package of more modules, or another kernel.

Which one depends on what the machine says about its kernel's modules, read from files given to
``kernel_fix`` (the fix as data) and ``fix_words`` (in the doctor's words) here (never this machine's /lib/modules): /proc/modules (absent in a kernel built without
module support), kernel.modules_disabled, and the running kernel's module tree with its modules.dep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab import doctor_verdict
from netlab.kernel import features

EXTRA = "on Ubuntu in linux-modules-extra-$(uname -r)"


def machine(tmp_path: Path, proc_modules: bool = True, tree: str = "indexed", disabled: str = "0"
            ) -> features.ModuleFiles:
    """A kernel's module files under tmp_path. tree: indexed (modules.dep lists sch_netem and vxlan),
    bare (the folder, with only linux-headers' build link: never indexed), or absent."""
    files = features.ModuleFiles(str(tmp_path / "proc-modules"), str(tmp_path / "modules_disabled"),
                                 str(tmp_path / "lib-modules-R"))
    if proc_modules:
        Path(files.proc_modules).write_text("bridge 1 0 - Live 0x0\n")
    Path(files.disabled).write_text(disabled + "\n")
    if tree != "absent":
        Path(files.tree).mkdir()
        (Path(files.tree) / "build").symlink_to("/usr/src/linux-headers-R")
    if tree == "indexed":
        Path(files.dep).write_text("kernel/net/sched/sch_netem.ko.xz:\n"
                                   "kernel/drivers/net/vxlan/vxlan.ko.zst: kernel/net/ipv4/udp_tunnel.ko.zst\n")
        (Path(files.tree) / "modules.builtin").write_text("kernel/net/bridge/br_netfilter.ko\n")
    return files


def test_modules_present_modprobe_loads_it_and_a_missing_one_may_come_in_a_package(tmp_path):
    files = machine(tmp_path)
    assert doctor_verdict.fix_words("netem", files) == f"modprobe sch_netem (CONFIG_NET_SCH_NETEM; {EXTRA})"
    assert doctor_verdict.fix_words("vxlan", files) == "modprobe vxlan (CONFIG_VXLAN), or use network.mode: host-gw"
    assert doctor_verdict.fix_words("br_netfilter", files).startswith(  # built in: what loading it does is said
        "modprobe br_netfilter (CONFIG_BRIDGE_NETFILTER; note: this also makes the host's own bridges")
    # Not in the tree: another kernel, or the package with the kernel's other modules.
    assert doctor_verdict.fix_words("htb", files) == (
        f"boot a kernel with CONFIG_NET_SCH_HTB (modprobe cannot help: this kernel has no module sch_htb "
        f"({files.dep} does not list it); {EXTRA})")
    assert features.module_tree_lacks("sch_htb", files) and not features.module_tree_lacks("sch_netem", files)


@pytest.mark.parametrize("tree,where", [("absent", "lib-modules-R is missing"),
                                        ("bare", "lib-modules-R/modules.dep is missing")])
def test_no_module_tree_another_kernel_and_no_package(tmp_path, tree, where):
    """A kernel that loads modules but whose modules are not on this machine (a VM's kernel booted from outside
    its disk): no package of this machine's makes the module, even one Ubuntu ships apart. A folder of the
    release with no modules.dep (linux-headers' build link alone) is no module tree either: it was said to
    "not list" the module, with the package to install."""
    files = machine(tmp_path, tree=tree)
    assert doctor_verdict.fix_words("htb", files) == (
        f"boot a kernel with CONFIG_NET_SCH_HTB (modprobe cannot help: this kernel's modules are not on this "
        f"machine ({tmp_path}/{where}))")
    assert not features.module_tree_lacks("sch_htb", files)


@pytest.mark.parametrize("tree", ["indexed", "absent"])
def test_no_proc_modules_a_kernel_without_module_support_needs_another(tmp_path, tree):
    """This VM's kernel (no /proc/modules, no /lib/modules): modprobe, or a package, can give it nothing."""
    files = machine(tmp_path, proc_modules=False, tree=tree)
    for name, config in (("htb", "CONFIG_NET_SCH_HTB"), ("netem", "CONFIG_NET_SCH_NETEM")):
        assert doctor_verdict.fix_words(name, files) == (
            f"boot a kernel with {config} (modprobe cannot help: this kernel was built without loadable module "
            "support (no /proc/modules))")
    assert not features.module_tree_lacks("sch_htb", files)


def test_loading_switched_off_needs_a_reboot_not_a_package(tmp_path):
    files = machine(tmp_path, disabled="1")
    assert doctor_verdict.fix_words("htb", files) == (
        "boot a kernel with CONFIG_NET_SCH_HTB (modprobe cannot help: module loading is off until the next boot "
        "(kernel.modules_disabled = 1))")
    assert not features.module_tree_lacks("sch_htb", files)


def test_the_fix_is_data_the_module_or_why_modprobe_cannot_help_and_the_words_are_made_from_it(tmp_path):
    """kernel_fix says the module and build options (doctor_netfilter.hostport_fix merges several modules' fixes
    from them, not from the words); fix_words says one feature's."""
    files = machine(tmp_path)
    fix = doctor_verdict.kernel_fix("vxlan", files)
    assert fix == doctor_verdict.KernelFix("CONFIG_VXLAN", "vxlan", otherwise="or use network.mode: host-gw"), fix
    fix = doctor_verdict.kernel_fix("htb", files)
    assert (fix.module, fix.config, fix.said) == (None, "CONFIG_NET_SCH_HTB", (EXTRA,)), fix
    assert fix.why == f"this kernel has no module sch_htb ({files.dep} does not list it)", fix
    fix = doctor_verdict.kernel_fix("multipath", files)  # built in: no module, the release it came with
    assert (fix.module, fix.config, fix.release) == (None, "CONFIG_IP_ROUTE_MULTIPATH", "5.12"), fix
    assert doctor_verdict.fix_words("multipath", files) == (
        f"boot a kernel >= 5.12 with CONFIG_IP_ROUTE_MULTIPATH (modprobe cannot help: {fix.why})")
    assert doctor_verdict.fix_words("netns", files) == doctor_verdict.NETNS_FIX
