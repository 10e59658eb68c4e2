"""The regeneration benchmark runs end to end and its query count does not grow with size."""

import json
from io import StringIO

from django.core.management import call_command


def run_bench(**params):
    out = StringIO()
    flags = [f"--{k}={v}" for k, v in params.items()]
    call_command("overlay_bench", "--json", *flags, stdout=out)
    return json.loads(out.getvalue())


def test_benchmark_reports_every_figure_and_constant_queries():
    small = run_bench(nodes=4, pdcs=2, rules=1, vnics=20)
    large = run_bench(nodes=12, pdcs=3, rules=3, vnics=300)
    for result in (small, large):
        assert set(result) >= {"queries", "seconds", "bytes", "peak_rss_mb", "nodes", "pdcs",
                               "rules", "vnics"}
        assert result["bytes"] > 0 and result["seconds"] > 0
    assert small["queries"] == large["queries"]
    assert large["bytes"] > small["bytes"]
    # one ARP table per rule plus the admin overlay's, five fixed files and /usbkey/config
    assert large["files"] == 12 * (3 + 1 + 5 + 1)
