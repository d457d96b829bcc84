from perstack_tui.catalog import Catalog
from perstack_tui.models import CompleteRun, Unreadable

from .conftest import COORDINATOR_JOB, CORRUPT_EVENT, ERROR_JOB, PROGRAMMATIC_JOB


async def test_real_fixtures_are_browsable(real_storage):
    catalog = Catalog(real_storage)
    assert sorted(await catalog.job_ids()) == sorted([COORDINATOR_JOB, ERROR_JOB, PROGRAMMATIC_JOB])
    job = await catalog.job(COORDINATOR_JOB)
    assert job.status == "completed" and job.steps == 4 and job.expert == "demo-coordinator"
    assert job.usage.totalTokens == 840
    error_job = await catalog.job(ERROR_JOB)
    assert error_job.status == "stoppedByError"
    runs = await catalog.runs(COORDINATOR_JOB)
    assert [r.depth for r in runs] == [0, 1]
    events = await real_storage.get_event_contents(COORDINATOR_JOB, "hadyhjk3onqq4qi3j6ixtsng")
    assert isinstance(events[0], Unreadable) and events[0].key == CORRUPT_EVENT
    assert isinstance(events[1], CompleteRun)
    assert (await catalog.job(PROGRAMMATIC_JOB)).source == "job.json"
