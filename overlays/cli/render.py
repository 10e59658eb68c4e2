"""overlay render HOSTNAME: print the files a node must hold, without touching it."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from overlays.cli import CliError
from overlays.selectors import node_files_data, redact, render_node_files

NAME = "render"
HELP = "Print a node's desired files (path, mode, owner, reload action, content)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("hostname", help="Node host name.")
    parser.add_argument("--json", action="store_true",
                        help="JSON as the API's node files: {hostname, files: [{path, "
                             "content, sha256, redacted, mode, owner, group, reload}], "
                             "usbkey: {path, managed, reload}}.")
    parser.add_argument("--show-secrets", action="store_true",
                        help="Print IPSec pre-shared keys instead of <redacted>.")


def run(command: Any, options: dict[str, Any]) -> None:
    found = render_node_files(options["hostname"])
    if found is None:
        raise CliError(f"No node named {options['hostname']}.")
    rendered, secrets = found
    if options["show_secrets"]:
        secrets = []
    if options["json"]:
        command.stdout.write(json.dumps(node_files_data(rendered, secrets), indent=2))
        return
    usbkey_lines = [f'{key}="{value}"' for key, value in sorted(rendered.usbkey.managed.items())]
    command.stdout.write(f"# {rendered.usbkey.path} (managed keys only; reload: "
                         f"{rendered.usbkey.reload})")
    command.stdout.write("\n".join(usbkey_lines) + "\n")
    for f in rendered.files:
        command.stdout.write(f"# {f.path} (mode {f.mode:04o}, {f.owner}:{f.group}; reload: "
                             f"{f.reload})")
        command.stdout.write(redact(f.content, secrets))
