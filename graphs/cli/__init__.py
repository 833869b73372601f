"""The `xthink` command line: one module per command, registered in `app.py`.

`main` imports the commands only when it runs, so importing this package does no work.
"""


def main() -> None:
    """The console script `xthink` (pyproject `graphs.cli:main`)."""
    from graphs.cli.app import main as run

    run()
