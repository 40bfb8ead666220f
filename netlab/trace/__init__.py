"""The life of a packet: ``netlab trace``, ``netlab capture`` and ``netlab inspect``.

``trace`` follows one real packet hop by hop (run.py): it captures in every
namespace the packet may cross, sends one marked packet, walks the path
asking each namespace's kernel what it decides, then marks every row seen or
not seen and, for a lost packet, names the hop where it disappeared (the row
whose problem dropped it, when the kernel's answers say so) and the reason.

The pure part, tested with a fake kernel:

- flow.py: the packet (addresses and ports), where a row expects to see it,
  and a copy the capture saw;
- facts.py: the kernel's answers as data, and the questions (``Kernel``);
- labmap.py: the lab's plan as the trace sees it (veth peers, names,
  Services, the commands that make missing entries again);
- walk.py (with hops.py): the walk and its rows; natsteps.py: its NAT steps,
  read from conntrack (nat.py) and kube-proxy's rules (kubeproxy.py: the
  rule a node lacks when it did not DNAT a Service packet, the rule that
  chose the endpoint when it did; wrongdnat.py: the rule, or the stale
  entry, that DNATed a Service packet to no endpoint);
- verdict.py: seen or not seen, where the packet was lost and why;
  lossblame.py: a loss the walk found no reason for, blamed on an
  impairment or a firewall; policyverdict.py: the NetworkPolicy verdict;
- render.py: the text a learner reads, and JSON.

Talking to the kernel and the wire:

- kernel.py: the ``Kernel`` answered by netlink (netlab.kernel's codec) and
  conntrack; inspect.py: what ``netlab inspect`` shows;
- capture.py: packet sockets in many namespaces, pcaps; decode.py: frames
  decoded and classified; send.py: the marked packet (dns.py: to port 53, a
  real DNS question that carries the marker, and its answer);
- targets.py: who a trace is from and to, where it captures; run.py: one
  trace, start to end.
"""
