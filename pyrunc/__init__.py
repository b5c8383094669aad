"""pyrunc: an OCI runtime-spec compatible container runtime, a drop-in runc.

Kept empty on purpose: every `pyrunc` invocation imports this package, and
the hot-path commands (state, start, kill, delete) must not pay for anything
they do not use.
"""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"


def stay():
    """A command that stays (foreground run/exec, events --interval) turns the
    collector back on; the launcher turned it off for short commands.
    Everything allocated so far lives as long as the command: freezing it
    spares the first collection a pass over every module (~2 ms)."""
    import gc
    gc.freeze()
    gc.enable()
