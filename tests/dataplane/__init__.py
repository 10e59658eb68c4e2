"""The data-plane lab: the rendered node files, applied to Linux namespaces, move packets.

``world`` holds what the operator declares (nodes, PDCs, VMs); ``product`` is the
only door to the manager (import a state file, render every node's files);
``translate`` turns rendered files into Linux objects; ``lab`` builds and
tears down the namespaces; ``vlan`` tags VM ports; ``proofs`` are the checks
the tests run on a lab. See tests/dataplane/conftest.py for what a machine needs.
"""
