"""`python -m pyrunc` and the installed `pyrunc` launcher both end here."""

from pyrunc.cli import run

if __name__ == "__main__":
    run()
