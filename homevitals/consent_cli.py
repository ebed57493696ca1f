"""`homevitals consent ...`: the record's consent commands plus `withdraw`, which also cancels
the webhooks still pending for the grantee (the record and delivery in one transaction)."""

from __future__ import annotations

from typing import Annotated

import typer

from alerts.delivery.consent_gate import withdraw_consent
from careteam.cli import By, Db, actor, now, run
from careteam.cli import consent_app as app

__all__ = ["app"]


@app.command("withdraw")
def consent_withdraw(
    consent_id: str,
    db: Db,
    reason: Annotated[str, typer.Option(help="Why (the patient's words, or 'patient request').")],
    by: By = None,
) -> None:
    """Withdraw a grant now; webhooks still queued for the grantee are cancelled."""
    done = run(
        db,
        "consent withdraw",
        lambda c: withdraw_consent(c, consent_id, actor=actor(by), at=now(), reason=reason),
    )
    typer.echo(f"withdrawn; {done.cancelled} pending webhook deliveries cancelled")
