"""The benchmark harness still runs end to end on tiny data (the real run: ``python -m bench``)."""

from __future__ import annotations

from pathlib import Path

from bench.runner import Settings, run_all


def test_bench_harness_measures_each_figure_against_its_floor(tmp_path: Path) -> None:
    settings = Settings([20], 100, 0.2, [100], 500, repeat=1, cold_repeat=1, s3=False)
    rows_seen: list[str] = []
    report = run_all(
        settings,
        ["jobs-list", "open-run", "checkpoint"],
        update_benchmarks=False,
        out_dir=tmp_path,
        log=rows_seen.append,
    )
    text = report.read_text()
    assert report.parent == tmp_path
    assert "| Figure | Data | Value | Floor | Ratio |" in text
    figures = ("jobs list newest-first rows", "open run, first screen", "open checkpoint")
    for figure in (*figures, "open run, first screen (TUI)"):
        line = next(row for row in text.splitlines() if row.startswith(f"| {figure}"))
        value, floor, ratio = (cell.strip() for cell in line.split("|")[3:6])
        assert value.endswith("ms") and floor.endswith("ms") and ratio.endswith("x"), line
    assert "failed" not in text, text


async def test_bench_generator_writes_what_the_storage_layer_writes() -> None:
    from bench import synth
    from bench.generate import write_plans
    from perstack_tui.storage.memory import MemoryStorage

    plans = list(synth.many_jobs(30, seed=9))
    through_store, generated = MemoryStorage(), MemoryStorage()
    for plan in plans:
        for event in plan.events:
            await through_store.store_event(event)
        for checkpoint in plan.checkpoints:
            await through_store.store_checkpoint(checkpoint)
        for setting in plan.run_settings:
            await through_store.store_run_setting(setting)
        if plan.job is not None:
            await through_store.store_job(plan.job)
    await write_plans(generated, plans)
    assert {k: v[0] for k, v in generated.objects.items()} == {
        k: v[0] for k, v in through_store.objects.items()
    }
    assert any(plan.job is None for plan in plans) and any(plan.job for plan in plans)
