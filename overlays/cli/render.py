"""overlay render HOSTNAME: print the files a node must hold, without touching it."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from overlays.cli import CliError
from overlays.generators import render_node
from overlays.snapshot import load_snapshot
from overlays.sync import node_paths

REDACTED = "<redacted>"

NAME = "render"
HELP = "Print a node's desired files (path, mode, owner, reload action, content)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("hostname", help="Node host name.")
    parser.add_argument("--json", action="store_true",
                        help="A JSON list of {path, mode, owner, reload, content}; "
                             "/usbkey/config as its managed lines.")
    parser.add_argument("--show-secrets", action="store_true",
                        help="Print IPSec pre-shared keys instead of <redacted>.")


def run(command: Any, options: dict[str, Any]) -> None:
    snapshot = load_snapshot()
    node = snapshot.nodes_by_hostname.get(options["hostname"])
    if node is None:
        raise CliError(f"No node named {options['hostname']}.")
    rendered = render_node(snapshot, node, node_paths())
    secrets = [] if options["show_secrets"] else snapshot.keys_of(node.id)

    def shown(content: str) -> str:
        for secret in secrets:
            content = content.replace(secret, REDACTED)
        return content

    usbkey_lines = [f'{key}="{value}"' for key, value in sorted(rendered.usbkey.managed.items())]
    if options["json"]:
        items: list[dict[str, Any]] = [
            {"path": f.path, "mode": f"{f.mode:04o}", "owner": f"{f.owner}:{f.group}",
             "reload": f.reload, "content": shown(f.content)}
            for f in rendered.files
        ]
        items.insert(0, {"path": rendered.usbkey.path, "mode": None, "owner": None,
                         "reload": rendered.usbkey.reload, "lines": usbkey_lines})
        command.stdout.write(json.dumps(items, indent=2))
        return
    command.stdout.write(f"# {rendered.usbkey.path} (managed keys only; reload: "
                         f"{rendered.usbkey.reload})")
    command.stdout.write("\n".join(usbkey_lines) + "\n")
    for f in rendered.files:
        command.stdout.write(f"# {f.path} (mode {f.mode:04o}, {f.owner}:{f.group}; reload: "
                             f"{f.reload})")
        command.stdout.write(shown(f.content))
