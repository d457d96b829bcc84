"""Against a real Cloudflare R2 bucket, when R2_ACCOUNT_ID, R2_ACCESS_KEY_ID,
R2_SECRET_ACCESS_KEY and R2_BUCKET are set (skipped otherwise). R2_ENDPOINT optionally
overrides the endpoint (e.g. an EU jurisdiction's ``{account}.eu.r2.cloudflarestorage.com``).

Writes only under a fresh ``perstack-tui-test/<uuid>/`` prefix and deletes what it wrote:
this tests storage, not browsing.
"""

from __future__ import annotations

import os
import uuid

import pytest

from perstack_tui import keys
from perstack_tui.models import RunEvent
from perstack_tui.storage.s3 import R2Storage

ENV = ("R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET")

pytestmark = [
    pytest.mark.r2,
    pytest.mark.skipif(
        not all(os.environ.get(name) for name in ENV),
        reason="set R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_BUCKET to run",
    ),
]


@pytest.fixture
async def r2_real():
    storage = R2Storage(
        os.environ["R2_ACCOUNT_ID"],
        os.environ["R2_BUCKET"],
        f"perstack-tui-test/{uuid.uuid4().hex}",
        access_key_id=os.environ["R2_ACCESS_KEY_ID"],
        secret_access_key=os.environ["R2_SECRET_ACCESS_KEY"],
        endpoint=os.environ.get("R2_ENDPOINT") or None,
    )
    yield storage
    client = storage._get_client()
    listed = client.list_objects_v2(Bucket=storage.bucket, Prefix=storage.prefix)
    for entry in listed.get("Contents", ()):
        client.delete_object(Bucket=storage.bucket, Key=entry["Key"])
    await storage.close()


async def test_an_event_round_trips_through_real_r2(r2_real):
    event = {
        "type": "streamReasoning",
        "id": "r2-event",
        "expertKey": "demo@1.0.0",
        "timestamp": 1795299382985,
        "jobId": "r2job",
        "runId": "r2run",
        "stepNumber": 1,
        "delta": "hello from perstack-tui",
    }
    await r2_real.store_event(event)
    assert await r2_real.list_job_ids() == ["r2job"]
    assert await r2_real.list_run_ids("r2job") == ["r2run"]
    metas = await r2_real.list_event_metas("r2job", "r2run")
    assert [m.key for m in metas] == [
        keys.event_key("r2job", "r2run", 1795299382985, 1, "streamReasoning")
    ]
    read = await r2_real.read_event(metas[0].key)
    assert isinstance(read, RunEvent) and read.model_dump()["delta"] == "hello from perstack-tui"
    raw = await r2_real.read_bytes(metas[0].key)
    assert raw.startswith(b'{"type":"streamReasoning","id":"r2-event"')
    assert r2_real.storage_info().location.startswith(f"r2://{os.environ['R2_ACCOUNT_ID']}/")
