"""integration/: tests that drive pyrunc through real clients and tools (see the README of each dir)."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "clients: podman / containerd (ctr) / CRI driving the runtime binary "
        "(integration/clients; needs ../shared/tools/clients/setup.sh and cri-setup.sh)",
    )
