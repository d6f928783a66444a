import sys

from isowasm.toolchain.cli import cli_compile

sys.exit(cli_compile())
