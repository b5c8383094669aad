"""linux.netDevices: move host interfaces into the container's network namespace.

pyroute2 is imported here only, and this module only when a config has
netDevices. Moving an interface across namespaces drops its addresses, so
the parent records them (and whether the link was up) before the move and
the init restores them inside, as runtime-spec config-linux.md requires.
"""

from .errors import ContainerError


def preload():
    """pyroute2 is imported by the parent: the init may not be able to read it."""
    from pyroute2 import IPRoute  # noqa: F401 - pyroute2 loads lazily


def move_all(net_devices, pid, log):
    """Parent side. Returns [{"name", "addrs": [[addr, prefixlen]], "up", "mtu"}] for the init."""
    from pyroute2 import IPRoute
    moved = []
    with IPRoute() as ipr:
        for name, dev in net_devices.items():
            new = (dev or {}).get("name") or name
            idx = ipr.link_lookup(ifname=name)
            if not idx:
                raise ContainerError(f"netDevices: no network interface {name!r} on the host")
            idx = idx[0]
            link = ipr.get_links(idx)[0]
            addrs = [[a.get_attr("IFA_ADDRESS"), a["prefixlen"]] for a in ipr.get_addr(index=idx)
                     if a.get_attr("IFA_ADDRESS")]
            up = bool(link["flags"] & 1)
            mtu = link.get_attr("IFLA_MTU")
            with log.step(f"move {name} into the container as {new}"):
                try:
                    ipr.link("set", index=idx, net_ns_pid=pid, ifname=new)
                except Exception as e:  # pyroute2 raises NetlinkError (an OSError subclass)
                    raise ContainerError(f"netDevices: move {name} into the container: {e}") from None
            moved.append({"name": new, "addrs": addrs, "up": up, "mtu": mtu})
    return moved


def restore_all(moved, log):
    """Init side, inside the container's network namespace."""
    if not moved:
        return
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        for dev in moved:
            idx = ipr.link_lookup(ifname=dev["name"])
            if not idx:
                raise ContainerError(f"netDevices: {dev['name']} did not arrive in the container")
            idx = idx[0]
            try:
                for addr, plen in dev["addrs"]:
                    ipr.addr("add", index=idx, address=addr, prefixlen=plen)
                if dev.get("up"):
                    ipr.link("set", index=idx, state="up")
            except Exception as e:
                raise ContainerError(f"netDevices: configure {dev['name']}: {e}") from None
