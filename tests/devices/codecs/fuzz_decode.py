"""atheris (libFuzzer) targets over `devices.codecs.decode`.

`all` fuzzes every characteristic in one process: the first input byte picks the
characteristic (sorted registry order), the rest is the payload. A UUID (``0x2A18``) fuzzes that
characteristic alone. Each input is decoded strictly and under every quirk profile. Anything
but `DecodeError` is a crash, and so is a decoded value that does not re-encode to the input bytes.

On demand, for longer (here one minute on Glucose Measurement; the corpus directory is seeded
with the golden vectors and keeps what the fuzzer finds):

    mkdir -p /tmp/fuzz-2a18
    .venv/bin/python -m tests.devices.codecs.fuzz_decode 0x2A18 /tmp/fuzz-2a18 -max_total_time=60

    .venv/bin/python -m tests.devices.codecs.fuzz_decode all /tmp/fuzz-all -max_total_time=600

`tests/devices/codecs/test_fuzz.py` runs `all` for a bounded few seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["devices"]):
    from devices.codecs import PROFILES, REGISTRY, DecodeError, decode

from tests.devices.codecs.vectors import VECTORS

PROFILE_NAMES = (None, *PROFILES)
UUIDS = tuple(sorted(REGISTRY))


def make_target(uuid: int):  # type: ignore[no-untyped-def]
    """The one-input function for `uuid`."""

    def one_input(data: bytes) -> None:
        for profile in PROFILE_NAMES:
            try:
                value = decode(uuid, data, profile=profile)
            except DecodeError:
                continue
            if bytes(value) != data:
                raise AssertionError(f"0x{uuid:04X} {profile}: {data.hex()} re-encodes differently")

    return one_input


def make_all_target():  # type: ignore[no-untyped-def]
    """The one-input function that fuzzes every characteristic (first byte selects it)."""
    targets = [make_target(uuid) for uuid in UUIDS]

    def one_input(data: bytes) -> None:
        if data:
            targets[data[0] % len(targets)](data[1:])

    return one_input


def seed_corpus(uuid: int | None, directory: Path) -> None:
    """Write the golden vectors of `uuid` (None: all, with selector byte) into `directory`."""
    for vector in VECTORS:
        if uuid is None:
            selector = bytes((UUIDS.index(vector.uuid),))
            (directory / f"all-{vector.name}").write_bytes(selector + vector.data)
        elif vector.uuid == uuid:
            (directory / vector.name).write_bytes(vector.data)


def main() -> None:
    """`python -m tests.devices.codecs.fuzz_decode <uuid|all> <corpus dir> [libFuzzer flags]`."""
    uuid = None if sys.argv[1] == "all" else int(sys.argv[1], 0)
    corpus = Path(sys.argv[2])
    seed_corpus(uuid, corpus)
    target = make_all_target() if uuid is None else make_target(uuid)
    atheris.Setup([sys.argv[0], *sys.argv[3:], str(corpus)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
