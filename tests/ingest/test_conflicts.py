"""A reading re-sent under its id with other content: quarantined and named in the receipt."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import sqlalchemy as sa

from devices.wire import Receipt, decode_receipt, encode_receipt
from ingest import schema
from ingest.store import make_engine
from tests.ingest.support import (
    GatewaySim,
    IngestProcess,
    batch_payload,
    drain,
    end_session,
    ingest_env,
    make_reading,
    wait_until,
)
from tests.support.record import enrol_readings
from tests.support.servers import MosquittoServer


def test_receipt_conflicts_round_trip_and_old_receipts_still_parse() -> None:
    receipt = Receipt(("a",), ("b", "c"), ("c",))
    assert decode_receipt(encode_receipt(receipt)) == receipt
    assert b"conflicts" not in encode_receipt(Receipt(("a",)))
    assert decode_receipt(b'{"schema":"hv.receipt/1","committed":["a"]}') == Receipt(("a",))


def test_a_conflicting_resend_is_receipted_as_conflict_and_kept(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    url = f"sqlite:///{tmp_path / 'hv.db'}"
    ingest = IngestProcess(
        tmp_path, "ingest", ingest_env(url, mosquitto.port, f"g{tag}", f"ingest-{tag}")
    )
    ingest.start()
    gw = GatewaySim(mosquitto.port, f"gw-{tag}")
    engine = make_engine(url)
    try:
        first = make_reading(gw.gateway_id, f"p{tag}", f"SN{tag}", 2)
        enrol_readings(engine, [first])
        gw.publish(batch_payload(gw.gateway_id, [first]))
        drain([gw], timeout_s=30)
        assert gw.conflicts == set()
        altered = dataclasses.replace(first, values={"glucose_mmol_l": 2.2})
        receipts = gw.receipts
        gw.publish(batch_payload(gw.gateway_id, [altered]))
        wait_until(lambda: gw.receipts > receipts, 30, "the second receipt")
        assert gw.conflicts == {first.reading_id}
        with engine.connect() as conn:
            stored = conn.execute(sa.select(schema.readings.c.glucose_mmol_l)).scalar_one()
            reasons = conn.execute(sa.select(schema.quarantine.c.reason)).scalars().all()
        assert stored == first.values["glucose_mmol_l"]
        assert len(reasons) == 1 and reasons[0].startswith("conflict:")
        assert "quarantined as conflict" in ingest.log()
    finally:
        engine.dispose()
        gw.close()
        ingest.stop()
        end_session(mosquitto.port, f"ingest-{tag}")
