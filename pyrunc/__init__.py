"""pyrunc: an OCI runtime-spec compatible container runtime, a drop-in runc.

Kept empty on purpose: every `pyrunc` invocation imports this package, and
the hot-path commands (state, start, kill, delete) must not pay for anything
they do not use.
"""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"
