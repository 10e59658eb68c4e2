"""The import benchmark runs end to end at a small size and measures what it says it does."""

from benchmarks import import_bench


def test_import_benchmark_reports_every_step_and_schedules_what_it_should():
    result = import_bench.run(import_bench.parse_args(
        ["--nodes=4", "--pdcs=2", "--rules=2", "--vdcs=2", "--networks=4", "--vnics=40"]))
    steps = result["steps"]
    assert list(steps) == list(import_bench.STEPS)
    for step in steps.values():
        assert step["seconds"] > 0 and step["queries"] > 0 and step["peak_rss_mb"] > 0
    # Every node is new; nothing changes; one vNIC's IP: the other nodes carrying its rule.
    assert steps["first_import"]["nodes_scheduled"] == 4
    assert steps["first_import"]["output_lines"] > 40
    assert (steps["nochange_import"]["nodes_scheduled"], steps["nochange_import"]["output_lines"]
            ) == (0, 1)
    assert (steps["one_vnic_import"]["nodes_scheduled"], steps["one_vnic_import"]["output_lines"]
            ) == (3, 1)
    assert steps["nochange_import"]["queries"] < steps["first_import"]["queries"]
    assert {"first_import_vs_export", "nochange_import_vs_export", "one_vnic_vs_nochange"} \
        <= set(result)
    assert "no-change import / export" in import_bench.report(result)
