"""NixOS host facts: store paths and closures, system generations, units and disks.

`storepaths` is pure (names, versions, closure differences); `facts` gathers from a host through
a `watchtower.net.transport.Transport`, so the same code reads the local machine, a host over SSH
and a throwaway test store.
"""
